"""The one plain function behind ``run.py`` (tests and other tools call ``run_job`` directly), and the sweep
summary with every task's own report (``summarize_sweep``: the Hydra callback and ``scripts/aggregate.py``)."""
from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import Any, Dict, List, Optional

from omegaconf import DictConfig, OmegaConf

from .analysis import aggregate, aggregate_dirs
from .config import check_config
from .errors import StarbenchError
from .records import RunDirLock, atomic_write_text, config_hash, one_line, read_metrics, write_failure
from .tasks import TASKS
from .train.device import env_rank

log = logging.getLogger("starbench")

HYDRA_SUBDIR = ".hydra"  # a run's composed config, overrides and Hydra settings, where Hydra would put them


def run_job(cfg: DictConfig, run_dir) -> Dict[str, Any]:
    """Run one job into ``run_dir``; return its metrics record. A job already completed there is
    not rerun (so a relaunched sweep only runs what is missing); an interrupted one resumes.

    The process owns ``run_dir`` for the whole job (``records.RunDirLock``: a second process gets
    ``RunDirBusy`` naming the first), and a refused job (busy, or a run of another configuration there)
    writes nothing: the run's ``.hydra/`` is saved here, once the job is known to run, not by Hydra."""
    run_dir = Path(run_dir)
    check_config(cfg)  # every key one the schema knows (experiments/config/schema.py), before anything is written
    if env_rank() != 0:  # under torchrun, rank 0 owns the run dir and writes its files
        return _run_task(cfg, run_dir)
    with RunDirLock(run_dir):
        previous = read_metrics(run_dir, strict=True)  # an unreadable record is refused, not silently replaced
        status = previous.get("status") if previous else None
        # A completed run is not redone, an interrupted one resumes: both only with the same configuration
        # (raised before the try, so the record stays as it is). A failed run may be retried with a fix.
        if status in ("completed", "interrupted", "running") and not same_computation(previous, run_dir, cfg):
            raise StarbenchError(f"{run_dir} holds {'a completed' if status == 'completed' else 'an unfinished'} "
                                 "run of another configuration; rerun with its overrides, or choose another "
                                 "hydra.run.dir (hydra.sweep.dir for a sweep)")
        if status == "completed":
            log.info("already completed in %s; not rerunning", run_dir)
            return previous
        save_hydra_files(cfg, run_dir)
        log.info("run dir: %s", run_dir.resolve())  # where metrics.json, last.pt and run.log are, before any wait
        return _run_task(cfg, run_dir)


def _run_task(cfg: DictConfig, run_dir: Path) -> Dict[str, Any]:
    try:
        return TASKS.get(cfg.task.name).run(cfg, run_dir)
    except Exception as e:
        info = {k: OmegaConf.select(cfg, k, default=None) for k in ("op", "width", "depth", "seed")}
        info.update(task=OmegaConf.select(cfg, "task.name"), model=OmegaConf.select(cfg, "model.name"),
                    data=OmegaConf.select(cfg, "data.name"))
        if env_rank() == 0:  # under torchrun, rank 0 alone writes the run's files
            try:
                write_failure(run_dir, OmegaConf.to_container(OmegaConf.create(info)), e)
                if not isinstance(e, (StarbenchError, ValueError)):  # a bug, not bad input: keep the traceback
                    atomic_write_text(run_dir / "error.log", traceback.format_exc())
            except (OSError, StarbenchError) as record_error:  # a full disk: the error itself still reaches the user
                log.warning("could not record the failure in %s: %s", run_dir, one_line(record_error))
        raise


def same_computation(previous: Dict[str, Any], run_dir: Path, cfg: DictConfig) -> bool:
    """Whether the run recorded in ``run_dir`` computes what ``cfg`` computes: its recorded hash, or else its saved
    ``.hydra/config.yaml`` hashed the way this version hashes (so a run from before a key joined
    ``NON_RESULT_KEYS``, e.g. the CPU fast-path switches, still resumes or counts as done)."""
    current = config_hash(cfg)
    if previous.get("config_hash") == current:
        return True
    saved = run_dir / HYDRA_SUBDIR / "config.yaml"
    try:
        return saved.is_file() and config_hash(OmegaConf.load(saved)) == current
    except Exception:  # an unreadable saved config is not the same run
        return False


def save_hydra_files(cfg: DictConfig, run_dir: Path) -> None:
    """``<run_dir>/.hydra/``: config.yaml, hydra.yaml and overrides.yaml, as Hydra writes them, but only for a job
    that runs (``hydra.output_subdir: null`` in conf/hydra/starbench.yaml stops Hydra writing them before a job
    is known to run, which overwrote a finished run's config with that of a refused one). Outside Hydra, none."""
    from hydra.core.hydra_config import HydraConfig
    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    out = run_dir / HYDRA_SUBDIR
    out.mkdir(parents=True, exist_ok=True)
    for name, node in (("config.yaml", cfg), ("hydra.yaml", OmegaConf.create({"hydra": hydra_cfg})),
                       ("overrides.yaml", hydra_cfg.overrides.task)):
        atomic_write_text(out / name, OmegaConf.to_yaml(node))


def end_of_run(message: str, job: Optional[str] = None) -> None:
    """How a run ends, as one line on stderr (``starbench: <message>``) and the same line in its log file
    (Hydra's ``run.log``), which would otherwise not say that the run failed or was stopped. ``job``: a multirun's
    job (its overrides), named at the end of the line, since the parallel launchers' jobs end in any order."""
    message = f"{message} (job {job})" if job else message
    # One write per line: the workers of a parallel launcher share stderr, and print's separate newline lets
    # two jobs' lines run together.
    sys.stderr.write(f"starbench: {message}\n")
    sys.stderr.flush()
    record = log.makeRecord(log.name, logging.INFO, __file__, 0, "end: %s", (message,), None)
    for handler in logging.getLogger().handlers:  # the file only: the console has the stderr line
        if isinstance(handler, logging.FileHandler):
            try:
                handler.handle(record)
            except OSError:
                pass


def summarize_dirs(sweep_dirs, out_dir, metric: Optional[str] = None, reference: Optional[str] = None,
                   only=None) -> List[Path]:
    """``experiments.analysis.aggregate_dirs`` (several dirs' jobs, ``only`` some, into ``out_dir``) with the
    registered tasks' own summary.md sections."""
    return aggregate_dirs(sweep_dirs, out_dir, metric=metric, reports=TASKS.sweep_reports(), reference=reference,
                          only=only)


def summarize_sweep(sweep_dir, metric: Optional[str] = None, wandb: Any = "auto",
                    reference: Optional[str] = None) -> List[Path]:
    """``experiments.analysis.aggregate`` with the registered tasks' own summary.md sections; ``reference``: the
    op the others are compared with (None: sum)."""
    return aggregate(sweep_dir, metric=metric, wandb=wandb, reports=TASKS.sweep_reports(), reference=reference)
