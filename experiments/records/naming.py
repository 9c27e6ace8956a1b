"""How runs and sweeps are named and told apart: the config hash (what a job computes), the W&B group of
a sweep (from its dir alone) and a run's stable W&B id (from its dir)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional

from omegaconf import DictConfig, OmegaConf


# Knobs that change where or how fast a job runs, not what it computes. The CPU fast paths compute PyTorch's math
# to float rounding (tests/starnet/kernels), as a different thread count does; where memory comes from
# (reuse_freed_memory) changes nothing computed.
FAST_PATH_KEYS = tuple(f"trainer.{k}" for k in ("fast_paths", "fast_dwconv", "compile_branches", "fused_mlp",
                                                 "fast_batchnorm", "fused_block",
                                                 "reuse_freed_memory"))
NON_RESULT_KEYS = ("logger", "paths", "trainer.threads", "trainer.device", "task.threads", "task.device", "data.root",
                   "data.workers", "data.cache_dir", *FAST_PATH_KEYS)


# Keys added to a data option after runs of it were recorded: (data.name, key) -> the value that computes what those
# runs computed, dropped from the hash at that value so that they keep their hash (and still count as done or
# resume). data=yolo's subset sizes: null = the whole split.
ADDED_DATA_DEFAULTS = {("yolo", "train_size"): None, ("yolo", "val_size"): None}


def config_hash(cfg: DictConfig) -> str:
    """Identifies what a job computes, so a relaunched sweep can tell a finished job from a changed one."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    for key in NON_RESULT_KEYS:
        parent, _, leaf = key.rpartition(".")
        node = plain.get(parent, {}) if parent else plain
        if isinstance(node, dict):
            node.pop(leaf, None)
    data = plain.get("data")
    if isinstance(data, dict):
        for (name, key), value in ADDED_DATA_DEFAULTS.items():
            if data.get("name") == name and key in data and data[key] == value:
                data.pop(key)
    return hashlib.sha1(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()[:12]


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
