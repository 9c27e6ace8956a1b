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

import logging
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from .analysis import load_jobs
from .analysis.jobs import RUNNING_ELSEWHERE
from .config import check_config, config_error_line
from .errors import StarbenchError
from .records import LOCK_FILE, METRICS_FILE, check_writable_dir
from .entry import HYDRA_SUBDIR, summarize_sweep
from .train.stopping import exit_if_sweep_stopped, start_sweep
from .train.trainer import CHECKPOINT
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
        exit_if_sweep_stopped(sweep_dir)  # stopped by a signal (any launcher): resumable, no summary of half a sweep
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


def sweep_choices(config: DictConfig, loader: Any = None) -> Dict[str, List[str]]:
    """key -> its ``key=value`` overrides in a multirun, as Hydra's basic sweeper builds its jobs from the preset's
    ``hydra.sweeper.params`` and the command line (the command line last, so it wins): a swept key has one entry per
    value (``op=star``, ``op=sum``), a plain one a single entry."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    params = OmegaConf.select(config, "hydra.sweeper.params", default=None) or {}
    lines = [f"{k}={v}" for k, v in params.items()] + list(OmegaConf.select(config, "hydra.overrides.task") or [])
    choices: Dict[str, List[str]] = {}
    for override in OverridesParser.create(config_loader=loader).parse_overrides(lines):
        key = override.get_key_element()
        if override.is_sweep_override():
            choices[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            choices[key] = [f"{key}={override.get_value_element_as_str()}"]
    return choices


def check_sweep(config: DictConfig) -> None:
    """Each value a multirun sweeps, checked before its first job (a typo in the last value of ``op=star,sum,stra``
    would otherwise fail only once the jobs before it have trained): the jobs that take each swept value once, every
    other swept key at its first value, composed as the launcher composes them (Hydra's ``load_sweep_config``), and
    each checked as a single run is (its keys and its task's ``check``). Combinations of two keys' later values
    are left to each job's own check."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    loader = GlobalHydra.instance().config_loader()
    choices = sweep_choices(config, loader)
    first = {key: options[0] for key, options in choices.items()}
    jobs = {tuple(first.values()): ""}  # the first job: a fault there is no swept value's
    for key, options in choices.items():
        for option in options[1:]:
            jobs.setdefault(tuple({**first, key: option}.values()), f"{option} (swept)")
    try:
        for overrides, what in jobs.items():
            try:
                job = loader.load_sweep_config(config, list(overrides))
                HydraConfig.instance().set_config(job)
                check_config(job)
                TASKS.check(job)
            except StarbenchError as e:
                raise StarbenchError(f"{what}: {e}" if what else str(e)) from None
            except Exception as e:  # Hydra's and OmegaConf's composition errors: one line, as for a single run
                line = config_error_line(e)
                if line is None:  # not a config error: Hydra warns and the jobs check themselves
                    raise
                raise StarbenchError(f"{what}: {line}" if what else line) from None
    finally:
        HydraConfig.instance().set_config(config)


# What a starbench run leaves in its dir (README, "Outputs"); Hydra's log is <job name>.log, run.log for run.py.
RUN_DIR_MARKS = (METRICS_FILE, LOCK_FILE, HYDRA_SUBDIR, CHECKPOINT, "run.log", "error.log", "wandb")


def check_run_dir_is_a_run(path: Path, key: str = "hydra.run.dir") -> None:
    """A run dir is new, empty, or a run's (to resume, or to find completed): a folder of other files is refused,
    not filled with a run's files among them (``hydra.run.dir=~/Downloads`` by mistake). Dotfiles do not count."""
    if not path.is_dir() or any((path / name).exists() for name in RUN_DIR_MARKS):
        return
    others = sorted(p.name for p in path.iterdir() if not p.name.startswith("."))
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise StarbenchError(f"{key} (run dir) {path} holds other files ({shown}) and no starbench run; choose a new "
                             f"or empty dir (a run writes {METRICS_FILE}, {CHECKPOINT}, run.log and {HYDRA_SUBDIR}/ "
                             "there)")


def launcher_is_local(config: DictConfig) -> bool:
    """Hydra's basic or joblib launcher: the jobs run on this machine, in this process group."""
    launcher = str(OmegaConf.select(config, "hydra.launcher._target_", default=""))
    return launcher.endswith(("BasicLauncher", "JoblibLauncher"))


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
        if launcher_is_local(config):
            start_sweep(Path(str(config.hydra.sweep.dir)))

    @staticmethod
    def _check(config: DictConfig, key: str, what: str, swept: bool = False) -> None:
        from hydra.core.hydra_config import HydraConfig
        HydraConfig.instance().set_config(config)  # ${hydra:...} in the dir resolves as it will for the job
        try:
            check_config(config)
            if swept:  # a multirun's own config is no job: its jobs are checked, as the launcher composes them
                if launcher_is_local(config):  # a SLURM job checks itself, on the machine it runs on
                    check_sweep(config)
            else:
                TASKS.check(config)
            check_writable_dir(Path(str(OmegaConf.select(config, key))), f"{key} ({what})")
            if not swept:
                check_run_dir_is_a_run(Path(str(OmegaConf.select(config, key))), key)
        except StarbenchError as e:
            print(f"starbench: error: {e}", file=sys.stderr)
            sys.exit(1)
