"""Sweep dir -> ``summary.csv``, ``summary.md``, ``star_vs_sum.png`` (and a W&B summary run).

Every job dir of a sweep holds ``metrics.json`` (written by the job) and ``.hydra/config.yaml``.
Knobs that differ between jobs are the sweep's axes: ``op`` and ``seed`` pair the runs, the rest
(``width``, ``depth``, ``model.act``, ...) make the rows. For each row, every op is compared per seed
with the reference op (``reference``, default sum: star vs sum in the paper's sweeps); each gap gets a
paired t confidence interval, because the paper reports one run per point and a gap of a few tenths can
be seed noise.

``python scripts/aggregate.py SWEEP_DIR`` runs this by hand; ``experiments.hydra_callbacks.SweepSummary``
at the end of every multirun (both through ``experiments.entry.summarize_sweep``, which adds the tasks'
own report sections); ``scripts/compare.py`` feeds ``write_outputs`` runs read back from W&B instead.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from ..errors import StarbenchError
from ..records import one_line
from .baseline import data_key, linear_baseline
from .figures import plot
from .format import format_value
from .jobs import Job, load_jobs, read_yaml
from .machines import machine_report
from .machines import markdown as machines_markdown
from .summary import Summary, check_regime, summarize
from .tables import write_csv, write_markdown
from .tuning import summarize_tuning, write_tuning
from .wandb_runs import log_to_wandb

log = logging.getLogger("starbench")
CSV_FILE, MD_FILE, FIG_FILE = "summary.csv", "summary.md", "star_vs_sum.png"
# A task's own section of summary.md: sweep_report(sweep_dir, that task's jobs) -> markdown lines.
SweepReport = Callable[[Path, Sequence[Job]], List[str]]


def write_outputs(jobs: Sequence[Job], out_dir, source: str, metric: Optional[str] = None,
                  extra: Sequence[str] = (), reference: Optional[str] = None) -> Tuple[Summary, List[Path]]:
    """The three summary files for ``jobs`` into ``out_dir`` (shared by aggregate and compare); ``reference``:
    the op the others are compared with (None: sum)."""
    if not jobs:
        raise StarbenchError(f"no jobs found in {source}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(jobs, metric, reference)
    summary.baseline = sweep_baseline(jobs, out_dir)
    check_regime(jobs, summary)
    machines = machine_report(jobs, summary)
    paths = [out_dir / CSV_FILE, out_dir / MD_FILE, out_dir / FIG_FILE]
    tuning = summarize_tuning(jobs, summary.metric, reference)
    if tuning is not None:  # a tuning sweep: the rows above are single trials; its answer is in tuning.md
        paths += write_tuning(tuning, out_dir, f"Tuning: {summary.title}")
        extra = ["", "## Tuning", "", f"Every op trained the same {', '.join(tuning.tuned)} trials: the table above "
                 f"has one row per trial. The comparison at an equal tuning budget per op is in "
                 f"{', '.join(p.name for p in paths[3:])}.", *extra]
    write_csv(jobs, summary, paths[0])
    write_markdown(jobs, summary, paths[1], source, [*machines_markdown(machines), *extra])
    plot(summary, paths[2], machines)
    if summary.reference_hint:
        log.warning("%s", summary.reference_hint)
    return summary, paths


def job_data_config(job: Job) -> Optional[Dict[str, Any]]:
    """The data node a job ran with: its whole config (its saved Hydra config, or the config its W&B run logged,
    ``data.root`` included, which the knobs leave out), else its flattened knobs."""
    config = job.config
    if config is None and job.run_dir:
        config = read_yaml(job.run_dir / ".hydra" / "config.yaml")
    if isinstance(config, dict) and isinstance(config.get("data"), dict):
        return config["data"]
    data = {k[len("data."):]: v for k, v in job.knobs.items() if k.startswith("data.")}
    return data or None


def sweep_baseline(jobs: Sequence[Job], cache_dir: Path, fit: bool = True) -> Optional[float]:
    """The linear baseline of a classification sweep whose jobs all train and score on the same images;
    None for other tasks, or when the jobs' data differ (one baseline per sweep). ``fit=False``: a cached one only."""
    done = [j for j in jobs if j.status == "completed"]
    if not done or any((j.record.get("task") or j.get("task.name")) != "classify" for j in done):
        return None
    configs = {data_key(c) if c else None: c for c in (job_data_config(j) for j in done)}
    if len(configs) != 1 or None in configs:
        return None
    try:
        return linear_baseline(next(iter(configs.values())), cache_dir, fit=fit)
    except Exception as e:  # the data are not here (runs read back from W&B elsewhere, hand-written records):
        log.warning("no linear baseline for this sweep: %s", one_line(e))  # the summary goes on
        return None


def task_reports(sweep_dir: Path, jobs: Sequence[Job], reports: Optional[Mapping[str, SweepReport]]) -> List[str]:
    """Extra markdown (and figures) from each task in ``reports`` whose jobs are in the sweep."""
    lines: List[str] = []
    for task in sorted({j.record.get("task") for j in jobs if j.record.get("task")}):
        report = (reports or {}).get(task)
        if report is not None:
            lines += report(sweep_dir, [j for j in jobs if j.record.get("task") == task])
    return lines


def aggregate(sweep_dir, metric: Optional[str] = None, wandb: Any = "auto",
              reports: Optional[Mapping[str, SweepReport]] = None, reference: Optional[str] = None) -> List[Path]:
    """Summarise a sweep dir in place. ``wandb``: a logger config to log a summary run with, None
    for no W&B, or "auto" to use the jobs' own logger config when it is wandb. ``reports``: task name ->
    ``sweep_report(sweep_dir, jobs)``, whose markdown lines are added for that task's jobs (analysis does
    not know the tasks: ``experiments.entry.summarize_sweep`` passes the registered ones). ``reference``: the op
    every other op is compared with (None: sum; a name given must have completed jobs)."""
    sweep_dir = Path(sweep_dir)
    jobs = load_jobs(sweep_dir)
    summary, paths = write_outputs(jobs, sweep_dir, str(sweep_dir), metric, task_reports(sweep_dir, jobs, reports),
                                   reference)
    if wandb == "auto":
        wandb = _jobs_logger(jobs)
    if wandb:
        log_to_wandb(sweep_dir, jobs, summary, paths, wandb)
    return paths


def keep_only(jobs: Sequence[Job], only: Optional[Mapping[str, Sequence[str]]]) -> List[Job]:
    """The jobs whose knob ``key`` is one of ``only[key]`` (values compared as text: ``width=8,16``), for every key.
    A key no job has is an error: a misspelled key would otherwise keep nothing, or everything."""
    if not only:
        return list(jobs)
    for key in only:
        if not any(key in j.knobs for j in jobs):
            raise StarbenchError(f"no job has the knob '{key}' (only={key}=...)")
    return [j for j in jobs if all(format_value(j.get(k)) in set(map(str, vs)) for k, vs in only.items())]


def aggregate_dirs(sweep_dirs: Sequence[Any], out_dir, metric: Optional[str] = None,
                   reports: Optional[Mapping[str, SweepReport]] = None, reference: Optional[str] = None,
                   only: Optional[Mapping[str, Sequence[str]]] = None) -> List[Path]:
    """The summary of the jobs of several dirs at once (a results dir's runs and the runs it shares with another
    preset, ``only`` some of them) written into ``out_dir``; no W&B. Each job keeps its own dir, so a results dir's
    ``machines.json`` still names the CPU of its records."""
    jobs = keep_only([j for d in sweep_dirs for j in load_jobs(d)], only)
    source = ", ".join(str(d) for d in sweep_dirs) + (
        " (" + "; ".join(f"{k} = {', '.join(map(str, v))}" for k, v in only.items()) + ")" if only else "")
    _, paths = write_outputs(jobs, out_dir, source, metric, task_reports(Path(out_dir), jobs, reports), reference)
    return paths


def _jobs_logger(jobs: Sequence[Job]) -> Optional[Dict[str, Any]]:
    for job in jobs:
        config = read_yaml(job.run_dir / ".hydra" / "config.yaml") if job.run_dir else None
        logger = (config or {}).get("logger") or {}
        if logger:
            return logger if logger.get("name") == "wandb" else None
    return None
