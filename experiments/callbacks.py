"""Hydra glue for sweeps: the summary at the end of every multirun, and the sweep's W&B group.

Registered in ``conf/hydra/starbench.yaml``::

    callbacks:
      sweep_summary:
        _target_: experiments.callbacks.SweepSummary
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("starbench")


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


class SweepSummary(Callback):
    """Writes summary.csv / summary.md / star_vs_sum.png into the sweep dir when a multirun ends
    (and logs them to W&B when the logger is wandb)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from .aggregate import aggregate
        sweep_dir = Path(str(config.hydra.sweep.dir))  # the launcher runs in the launch dir
        logger = config.get("logger") or {}
        try:
            paths = aggregate(sweep_dir, wandb=logger if logger.get("name") == "wandb" else None)
        except Exception as e:  # never lose the sweep over its summary: it can be redone by hand
            log.error("sweep summary failed (%s: %s); rerun: python scripts/aggregate.py %s",
                      type(e).__name__, e, sweep_dir)
            return
        log.info("sweep summary: %s", ", ".join(str(p) for p in paths))
        from .aggregate import load_jobs
        jobs = load_jobs(sweep_dir)
        unfinished = [job for job in jobs if job.status != "completed"]
        if unfinished:  # the sweep's exit status says so too (CI, SLURM dependencies, shell scripts)
            print(f"starbench: error: {len(unfinished)} of {len(jobs)} jobs did not complete; see "
                  f"{sweep_dir / 'summary.md'}", file=sys.stderr)
            sys.exit(1)
