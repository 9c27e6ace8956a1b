"""Hydra callbacks: the config and the run or sweep dir checked before Hydra writes there, and the summary at the end of every
multirun. (A sweep's W&B group is named in ``experiments.records.naming``.)

Registered in ``conf/hydra/starbench.yaml``::

    callbacks:
      preflight:
        _target_: experiments.hydra_callbacks.Preflight
      sweep_summary:
        _target_: experiments.hydra_callbacks.SweepSummary

The reference op of the summary (default sum) is the callback's ``reference`` argument: for one multirun,
``+hydra.callbacks.sweep_summary.reference=max`` on the command line.
"""
from __future__ import annotations

import copy
import logging
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from .analysis import load_jobs
from .analysis.jobs import RUNNING_ELSEWHERE
from .config import check_config
from .errors import StarbenchError
from .records import check_writable_dir
from .entry import end_sweep, start_sweep, summarize_sweep
from .tasks import TASKS

log = logging.getLogger("starbench")


class SweepSummary(Callback):
    """Writes summary.csv / summary.md / star_vs_sum.png into the sweep dir when a multirun ends
    (and logs them to W&B when the logger is wandb). ``reference``: the op the others are compared with
    (None: sum)."""

    def __init__(self, reference: Optional[str] = None) -> None:
        self.reference = reference

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))  # the launcher runs in the launch dir
        stopped = end_sweep()
        if stopped is not None:  # stopped by a signal (any launcher): resumable, no summary of half a sweep
            print(f"starbench: sweep stopped by {stopped.name}; rerun the same command to resume it "
                  f"(python scripts/aggregate.py {sweep_dir} summarizes what is done)", file=sys.stderr)
            sys.exit(128 + int(stopped))
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
            elsewhere = sum(job.status == RUNNING_ELSEWHERE for job in unfinished)
            note = f" ({elsewhere} still running elsewhere)" if elsewhere else ""
            print(f"starbench: error: {len(unfinished)} of {len(jobs)} jobs did not complete{note}; see "
                  f"{sweep_dir / 'summary.md'}", file=sys.stderr)
            sys.exit(1)


def swept_values(config: DictConfig) -> Dict[str, List[Any]]:
    """key -> the values a multirun sweeps it over: the preset's ``hydra.sweeper.params`` and the command line's
    sweep overrides (``op=star,sum``, ``seed=range(3)``), the command line winning as in Hydra's basic sweeper.
    Plain overrides, additions (``+key=``) and ``hydra.*`` keys are left out."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Transformer
    params = OmegaConf.select(config, "hydra.sweeper.params", default=None) or {}
    lines = [f"{k}={v}" for k, v in params.items()] + list(OmegaConf.select(config, "hydra.overrides.task") or [])
    swept: Dict[str, List[Any]] = {}
    for override in OverridesParser.create().parse_overrides(lines):
        key = override.key_or_group
        if override.is_add() or override.is_delete() or key.startswith("hydra") or override.package is not None:
            continue
        if override.is_sweep_override():
            try:
                swept[key] = list(override.sweep_iterator(transformer=Transformer.identity))
            except Exception:  # e.g. glob(), which expands only against a group's options: left to Hydra
                swept.pop(key, None)
        else:
            swept.pop(key, None)  # a plain value on the command line replaces the preset's sweep
    return swept


def check_swept_values(config: DictConfig) -> None:
    """Each value a multirun sweeps, checked before its first job (a typo in the last value of ``op=star,sum,stra``
    would otherwise fail only once the jobs before it have trained): a config group's values must be its options,
    a key must exist, and each value, set alone on the sweep's config, must pass its task's ``check``. (Values of
    two swept keys are not checked in combination: each job's own check still runs.)"""
    from hydra.core.global_hydra import GlobalHydra
    loader = GlobalHydra.instance().config_loader() if GlobalHydra.instance().is_initialized() else None
    for key, values in swept_values(config).items():
        options = loader.get_group_options(key) if loader is not None else []
        if options:  # a config group (model=demonet,starnet): Hydra would refuse an unknown option at that job
            bad = [str(v) for v in values if str(v) not in options]
            if bad:
                raise StarbenchError(f"{key}={bad[0]} (swept): no such option; valid: {', '.join(sorted(options))}")
            continue
        if OmegaConf.select(config, key, default="<missing>") == "<missing>":
            raise StarbenchError(f"{key} (swept) is not a config key; add + to create one (+{key}=...)")
        for value in values:
            job = copy.deepcopy(config)
            with open_dict(job):
                OmegaConf.update(job, key, value, merge=False)
            try:
                check_config(job)
                TASKS.check(job)
            except StarbenchError as e:
                raise StarbenchError(f"{key}={value} (swept): {e}") from None


class Preflight(Callback):
    """Before Hydra creates the run (sweep) dir or opens run.log there: every config key is one the schema knows
    (``experiments.config.check_config``), the task accepts the config (``TaskRegistry.check``: op, activation,
    model, device, the numbers; in a multirun every swept value too), and the dir can be one (a file in its place, a
    read-only parent). Any fault is one line and exit 1, before any training and before any file is written,
    instead of a silently ignored key, a failed run's dir or Hydra's traceback."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "hydra.run.dir", "run dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "hydra.sweep.dir", "sweep dir", swept=True)
        # SIGINT/SIGTERM stop the sweep alike under the local launchers (basic, joblib: one process group). A SLURM
        # (submitit) job is its own: a signal there stops that job, and SLURM requeues it.
        launcher = str(OmegaConf.select(config, "hydra.launcher._target_", default=""))
        if launcher.endswith(("BasicLauncher", "JoblibLauncher")):
            start_sweep(Path(str(config.hydra.sweep.dir)))

    @staticmethod
    def _check(config: DictConfig, key: str, what: str, swept: bool = False) -> None:
        from hydra.core.hydra_config import HydraConfig
        HydraConfig.instance().set_config(config)  # ${hydra:...} in the dir resolves as it will for the job
        try:
            check_config(config)
            TASKS.check(config)
            if swept:
                check_swept_values(config)
            check_writable_dir(Path(str(OmegaConf.select(config, key))), f"{key} ({what})")
        except StarbenchError as e:
            print(f"starbench: error: {e}", file=sys.stderr)
            sys.exit(1)
