"""How runs and sweeps are named in W&B: the group of a sweep (from its dir alone) and a run's stable id (from its
dir). (What a job computes is told by the config hash, ``hashing.py``.)"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional


def sweep_group(sweep_dir) -> str:
    """The W&B group of a sweep, from its dir alone: ``<parent>_<name>`` (``outputs/sweeps/2026-01-02/
    03-04-05`` -> ``2026-01-02_03-04-05``). Every job, the summary run and a later
    ``scripts/aggregate.py`` derive the same name, whatever process or clock they run on."""
    path = Path(sweep_dir).resolve()
    return f"{path.parent.name}_{path.name}" if path.parent.name else path.name


def current_sweep_group() -> Optional[str]:
    """The W&B group of the Hydra multirun this process runs a job of; None outside a multirun."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    if not HydraConfig.initialized():
        return None
    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return None
    # The job may have chdir'ed into its run dir: anchor a relative sweep dir at the launch dir.
    return sweep_group(Path(hc.runtime.cwd) / str(hc.sweep.dir))


def stable_id(run_dir: Path) -> str:
    return hashlib.sha1(str(Path(run_dir).resolve()).encode()).hexdigest()[:16]
