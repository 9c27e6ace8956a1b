"""The one plain function behind ``run.py`` (tests and other tools call ``run_job`` directly), and the sweep
summary with every task's own report (``summarize_sweep``: the Hydra callback and ``scripts/aggregate.py``)."""
from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import Any, Dict, List, Optional

from omegaconf import DictConfig, OmegaConf

from .analysis import aggregate
from .errors import StarbenchError
from .records import config_hash, read_metrics, write_failure
from .tasks import TASKS
from .train.distributed import env_rank

log = logging.getLogger("starbench")

# conf/config.yaml's top level. Hydra refuses unknown keys on the command line, but an experiment preset
# (``@package _global_``) may add any: a misspelled one would otherwise be silently ignored.
TOP_LEVEL_KEYS = {"model", "data", "trainer", "logger", "task", "op", "seed", "width", "depth", "paths", "hydra"}


def run_job(cfg: DictConfig, run_dir) -> Dict[str, Any]:
    """Run one job into ``run_dir``; return its metrics record. A job already completed there is
    not rerun (so a relaunched sweep only runs what is missing); an interrupted one resumes."""
    run_dir = Path(run_dir)
    unknown = sorted(set(cfg) - TOP_LEVEL_KEYS)
    if unknown:
        raise StarbenchError(f"unknown config key(s) {', '.join(unknown)} (misspelled in an experiment preset?); "
                             f"valid: {', '.join(sorted(TOP_LEVEL_KEYS - {'hydra'}))}")
    previous = read_metrics(run_dir)
    status = previous.get("status") if previous else None
    # A completed run is not redone, an interrupted one resumes: both only with the same configuration
    # (raised before the try, so the record stays as it is). A failed run may be retried with a fix.
    if status in ("completed", "interrupted", "running") and previous.get("config_hash") != config_hash(cfg):
        raise StarbenchError(f"{run_dir} holds {'a completed' if status == 'completed' else 'an unfinished'} run "
                             "of another configuration; rerun with its overrides, or choose another "
                             "hydra.run.dir (hydra.sweep.dir for a sweep)")
    if status == "completed":
        log.info("already completed in %s; not rerunning", run_dir)
        return previous
    try:
        return TASKS.get(cfg.task.name).run(cfg, run_dir)
    except Exception as e:
        info = {k: OmegaConf.select(cfg, k, default=None) for k in ("op", "width", "depth", "seed")}
        info.update(task=OmegaConf.select(cfg, "task.name"), model=OmegaConf.select(cfg, "model.name"),
                    data=OmegaConf.select(cfg, "data.name"))
        if env_rank() == 0:  # under torchrun, rank 0 alone writes the run's files
            write_failure(run_dir, OmegaConf.to_container(OmegaConf.create(info)), e)
        if not isinstance(e, (StarbenchError, ValueError)):  # a bug, not bad input: keep the traceback
            (run_dir / "error.log").write_text(traceback.format_exc())
        raise


def summarize_sweep(sweep_dir, metric: Optional[str] = None, wandb: Any = "auto",
                    reference: Optional[str] = None) -> List[Path]:
    """``experiments.analysis.aggregate`` with the registered tasks' own summary.md sections; ``reference``: the
    op the others are compared with (None: sum)."""
    return aggregate(sweep_dir, metric=metric, wandb=wandb, reports=TASKS.sweep_reports(), reference=reference)
