"""Hydra callbacks: the summary at the end of every multirun. (A sweep's W&B group is named in
``experiments.records.naming``.)

Registered in ``conf/hydra/starbench.yaml``::

    callbacks:
      sweep_summary:
        _target_: experiments.hydra_callbacks.SweepSummary

The reference op of the summary (default sum) is the callback's ``reference`` argument: for one multirun,
``+hydra.callbacks.sweep_summary.reference=max`` on the command line.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from .analysis import load_jobs
from .entry import summarize_sweep

log = logging.getLogger("starbench")


class SweepSummary(Callback):
    """Writes summary.csv / summary.md / star_vs_sum.png into the sweep dir when a multirun ends
    (and logs them to W&B when the logger is wandb). ``reference``: the op the others are compared with
    (None: sum)."""

    def __init__(self, reference: Optional[str] = None) -> None:
        self.reference = reference

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))  # the launcher runs in the launch dir
        logger = config.get("logger") or {}
        try:
            paths = summarize_sweep(sweep_dir, wandb=logger if logger.get("name") == "wandb" else None,
                                    reference=self.reference)
        except Exception as e:  # never lose the sweep over its summary: it can be redone by hand
            log.error("sweep summary failed (%s: %s); rerun: python scripts/aggregate.py %s",
                      type(e).__name__, e, sweep_dir)
            return
        log.info("sweep summary: %s", ", ".join(str(p) for p in paths))
        jobs = load_jobs(sweep_dir)
        unfinished = [job for job in jobs if job.status != "completed"]
        if unfinished:  # the sweep's exit status says so too (CI, SLURM dependencies, shell scripts)
            print(f"starbench: error: {len(unfinished)} of {len(jobs)} jobs did not complete; see "
                  f"{sweep_dir / 'summary.md'}", file=sys.stderr)
            sys.exit(1)
