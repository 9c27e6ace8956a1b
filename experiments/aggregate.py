"""Sweep dir -> ``summary.csv``, ``summary.md``, ``star_vs_sum.png`` (and a W&B summary run).

Every job dir of a sweep holds ``metrics.json`` (written by the job) and ``.hydra/config.yaml``.
Knobs that differ between jobs are the sweep's axes: ``op`` and ``seed`` pair the runs, the rest
(``width``, ``depth``, ``model.act``, ...) make the rows. For each row, star and sum are compared
per seed; the gap gets a paired t confidence interval, because the paper reports one run per
point and a gap of a few tenths can be seed noise.

``python scripts/aggregate.py SWEEP_DIR`` runs this by hand; ``experiments.callbacks.SweepSummary``
at the end of every multirun; ``scripts/compare.py`` feeds it runs read back from W&B instead.
"""
from __future__ import annotations

import csv
import hashlib
import importlib
import io
import json
import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from .callbacks import sweep_group
from .errors import StarbenchError
from .tracking import METRICS_FILE, NON_RESULT_KEYS

BASE_OP, TEST_OP = "sum", "star"
CSV_FILE, MD_FILE, FIG_FILE = "summary.csv", "summary.md", "star_vs_sum.png"
LEVEL = 0.95
METRIC_LABELS = {"top1": "Top-1 accuracy", "top5": "Top-5 accuracy", "best_top1": "Best-epoch top-1 accuracy",
                 "map50_95": "mAP50-95", "map50": "mAP50"}
METRICS = ("epoch", "top1", "top5", "best_top1", "params", "flops", "train_time_s", "train_images_per_s")
# Record fields that name a run rather than measure it (so they are not extra metric columns).
IDENTITY = {"width", "depth", "seed", "epochs", "num_classes", "in_chans", "image_size", "train_size", "imgsz",
            "threads"}
# Row axes are picked in this order; a knob that only repeats an earlier one (model.act when
# model.name varies) is left out of the rows, though it stays in summary.csv.
AXIS_PRIORITY = ("model.name", "model.variant", "model.act", "width", "depth", "data.name", "trainer.epochs")
# Where a job has no saved config (hand-written records), its knobs come from the record.
RECORD_KNOBS = {"op": "op", "seed": "seed", "model": "model.name", "variant": "model.variant", "act": "model.act",
                "width": "width", "depth": "depth", "data": "data.name", "epochs": "trainer.epochs"}
PAIR_KEYS = ("op", "seed")
MODEL_LABELS = {"demonet": "DemoNet", "starnet": "StarNet"}


@dataclass
class Job:
    name: str                     # the job's sub-dir in the sweep (or its W&B run name)
    status: str                   # completed | failed | running | missing
    error: Optional[str]
    knobs: Dict[str, Any]         # flat config: "width" -> 48, "model.act" -> "gelu", ...
    record: Dict[str, Any]        # metrics.json, or the W&B run summary
    run_dir: Optional[Path] = None

    def get(self, key: str) -> Any:
        return self.knobs.get(key)

    def metric(self, name: str) -> Optional[float]:
        value = self.record.get(name)
        return float(value) if self.status == "completed" and isinstance(value, (int, float)) else None


@dataclass
class Gap:
    n: int
    mean: Optional[float] = None
    lo: Optional[float] = None
    hi: Optional[float] = None

    @property
    def significant(self) -> Optional[bool]:
        return None if self.lo is None else (self.lo > 0 or self.hi < 0)


@dataclass
class Row:
    key: Tuple[Any, ...]                                      # values of the axes
    by_op: Dict[Any, Dict[Any, float]] = field(default_factory=dict)  # op -> seed -> metric

    def values(self, op: str) -> List[float]:
        return list(self.by_op.get(op, {}).values())

    @property
    def gap(self) -> Gap:
        return paired_gap(self.by_op.get(BASE_OP, {}), self.by_op.get(TEST_OP, {}))


@dataclass
class Summary:
    metric: str
    varied: List[str]     # every knob that differs between jobs (the CSV columns)
    axes: List[str]       # the knobs that make the rows
    rows: List[Row]
    title: str


# ---------------------------------------------------------------- statistics

def mean_std(xs: Sequence[float]) -> Tuple[Optional[float], Optional[float]]:
    """Mean and sample standard deviation (None where undefined)."""
    if not xs:
        return None, None
    mean = sum(xs) / len(xs)
    if len(xs) < 2:
        return mean, None
    return mean, math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


def t_quantile(p: float, df: int) -> float:
    from scipy.stats import t  # scipy comes with scikit-learn
    return float(t.ppf(p, df))


def paired_gap(base: Dict[Any, float], test: Dict[Any, float], level: float = LEVEL) -> Gap:
    """test - base over the seeds both have: mean and a two-sided paired t interval."""
    diffs = [test[s] - base[s] for s in base if s in test]
    mean, std = mean_std(diffs)
    if std is None:
        return Gap(len(diffs), mean)
    half = t_quantile(0.5 + level / 2, len(diffs) - 1) * std / math.sqrt(len(diffs))
    return Gap(len(diffs), mean, mean - half, mean + half)


# ---------------------------------------------------------------- reading jobs

def _hashable(value: Any) -> Any:
    """Lists become tuples (dicts inside them JSON text), so that values can be grouped on."""
    if isinstance(value, (list, tuple)):
        return tuple(json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v for v in value)
    return value


def flatten(node: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    """Nested dict -> {"a.b": leaf}."""
    out: Dict[str, Any] = {}
    for k, v in node.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = _hashable(v)
    return out


def _is_noise(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in (*NON_RESULT_KEYS, "hydra"))


def knobs_of(record: Dict[str, Any], config: Optional[Dict[str, Any]] = None,
             overrides: Sequence[str] = ()) -> Dict[str, Any]:
    """A job's flat knobs: its saved config when there is one, else its record and overrides."""
    if config is not None:
        knobs = flatten(config)
    else:
        knobs = {key: _hashable(record[name]) for name, key in RECORD_KNOBS.items() if name in record}
        for item in overrides:
            key, sep, value = item.lstrip("+~").partition("=")
            if sep:
                knobs[key] = _hashable(_yaml_value(value))
    return {k: v for k, v in knobs.items() if not _is_noise(k)}


def _yaml_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text()) if path.exists() else None
    except yaml.YAMLError:
        return None


def load_jobs(sweep_dir) -> List[Job]:
    """Every job under ``sweep_dir``: a dir with a metrics.json or a saved Hydra config."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise StarbenchError(f"sweep dir {sweep_dir} does not exist")
    dirs = {p.parent for p in sweep_dir.rglob(METRICS_FILE)}
    dirs |= {p.parent for p in sweep_dir.rglob(".hydra") if p.is_dir()}
    jobs = []
    for d in sorted(dirs):
        if "wandb" in d.relative_to(sweep_dir).parts:
            continue
        record = _read_json(d / METRICS_FILE)
        if record is None:
            record = {}
            status, error = "missing", "no readable metrics.json: not started yet, or died before writing it"
        else:
            status, error = record.get("status", "missing"), record.get("error")
        knobs = knobs_of(record, _read_yaml(d / ".hydra" / "config.yaml"),
                         _read_yaml(d / ".hydra" / "overrides.yaml") or ())
        name = str(d.relative_to(sweep_dir)) if d != sweep_dir else d.name
        jobs.append(Job(name, status, error, knobs, record, d))
    return jobs


def _read_json(path: Path) -> Optional[Dict[str, Any]]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


# ---------------------------------------------------------------- summarising

def _sort_key(value: Any) -> Tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, value)
    return (2, str(value))


def varied_knobs(jobs: Sequence[Job]) -> List[str]:
    """Knobs with more than one value among the jobs that have them; op and seed first."""
    values: Dict[str, set] = {}
    for job in jobs:
        for k, v in job.knobs.items():
            values.setdefault(k, set()).add(v)
    varied = [k for k, vs in values.items() if len(vs) > 1]
    rank = {k: i for i, k in enumerate((*PAIR_KEYS, *AXIS_PRIORITY))}
    return sorted(varied, key=lambda k: (rank.get(k, len(rank)), k))


def choose_axes(jobs: Sequence[Job], varied: Sequence[str]) -> List[str]:
    """The varied knobs (besides op and seed) that split the jobs further, in priority order."""
    axes: List[str] = []
    groups = 1
    for key in varied:
        if key in PAIR_KEYS:
            continue
        n = len({tuple(j.get(k) for k in (*axes, key)) for j in jobs})
        if n > groups:
            axes.append(key)
            groups = n
    return axes


def _title(jobs: Sequence[Job], axes: Sequence[str]) -> str:
    """"Star vs sum: DemoNet (depth 12) on fashion_mnist (4 epochs, 3 seeds)", from the completed jobs."""
    done = [j for j in jobs if j.status == "completed"] or list(jobs)

    def values(name: str, knob: str) -> List[str]:
        vs = {_fmt(j.record.get(name, j.get(knob))) for j in done}
        return sorted(v for v in vs if v)

    models = set()
    for j in done:
        model, variant = (_fmt(j.record.get(n, j.get(k))) for n, k in (("model", "model.name"),
                                                                       ("variant", "model.variant")))
        if model:
            models.add(MODEL_LABELS.get(model, model) + (f"-{variant.upper()}" if variant else ""))
    # The fixed one of a width or depth sweep (a StarNet variant's name already says both).
    shape = [] if values("variant", "model.variant") else \
        [f"{k} {v[0]}" for k in ("width", "depth") if k not in axes for v in [values(k, k)] if len(v) == 1]
    epochs = values("epochs", "trainer.epochs")
    seeds = {j.get("seed") for j in done if j.get("seed") is not None}
    detail = [f"{'/'.join(epochs)} epoch{'s' if epochs != ['1'] else ''}"] if epochs else []
    detail.append(f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}")
    return (f"{TEST_OP.capitalize()} vs {BASE_OP}: {', '.join(sorted(models)) or 'model?'}"
            f"{' (' + ', '.join(shape) + ')' if shape else ''} on "
            f"{'/'.join(values('data', 'data.name')) or 'data?'} ({', '.join(detail)})")


def default_metric(jobs: Sequence[Job]) -> str:
    """mAP50-95 for a sweep of detectors, top-1 otherwise."""
    tasks = {j.record.get("task") for j in jobs if j.status == "completed"}
    return "map50_95" if tasks == {"detect"} else "top1"


def summarize(jobs: Sequence[Job], metric: Optional[str] = None) -> Summary:
    completed = [j for j in jobs if j.status == "completed"]
    if metric and completed and all(j.metric(metric) is None for j in completed):  # a typo: keep the old files
        known = sorted({k for j in completed for k, v in j.record.items()
                        if isinstance(v, (int, float)) and not isinstance(v, bool)})
        raise StarbenchError(f"no completed job records metric '{metric}'; they record: {', '.join(known)}")
    metric = metric or default_metric(jobs)
    varied = varied_knobs(jobs)
    axes = choose_axes(jobs, varied)
    rows: Dict[Tuple[Any, ...], Row] = {}
    for job in jobs:
        key = tuple(job.get(a) for a in axes)
        row = rows.setdefault(key, Row(key))
        value = job.metric(metric)
        if value is not None:
            row.by_op.setdefault(job.get("op"), {})[job.get("seed")] = value
    ordered = [rows[k] for k in sorted(rows, key=lambda k: tuple(_sort_key(v) for v in k))]
    return Summary(metric, varied, axes, ordered, _title(jobs, axes))


# ---------------------------------------------------------------- outputs

def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple):
        return "[" + ",".join(map(str, value)) + "]"
    return str(value)


def _pm(xs: Sequence[float]) -> str:
    mean, std = mean_std(xs)
    if mean is None:
        return "–"
    return f"{mean:.2f}" if std is None else f"{mean:.2f} ± {std:.2f}"


def _gap_text(gap: Gap) -> str:
    if gap.mean is None:
        return "–"
    if gap.lo is None:
        return f"{gap.mean:+.2f}"
    return f"{gap.mean:+.2f} [{gap.lo:+.2f}, {gap.hi:+.2f}]"


def _significant_text(gap: Gap) -> str:
    return {None: "n/a", True: "yes", False: "no"}[gap.significant]


def row_label(summary: Summary, row: Row) -> str:
    if not summary.axes:
        return "all"
    if len(summary.axes) == 1:
        return _fmt(row.key[0])
    return ", ".join(f"{a}={_fmt(v)}" for a, v in zip(summary.axes, row.key))


def extra_metric_names(jobs: Sequence[Job]) -> List[str]:
    """Numeric record fields besides the standard metrics (e.g. the moons SVM accuracies)."""
    names = {k for j in jobs for k, v in j.record.items()
             if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return sorted(names - set(METRICS) - IDENTITY)


def write_csv(jobs: Sequence[Job], summary: Summary, path: Path) -> None:
    metrics = [*METRICS, *extra_metric_names(jobs)]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["job", "status", "error", *summary.varied, *metrics])
    for job in jobs:
        writer.writerow([job.name, job.status, job.error or "", *(_fmt(job.get(k)) for k in summary.varied),
                         *(_fmt(job.record.get(m)) for m in metrics)])
    path.write_text(out.getvalue())


def markdown_table(summary: Summary) -> List[str]:
    heads = summary.axes or ["runs"]
    lines = [f"| {' | '.join(heads)} | {BASE_OP} | {TEST_OP} | gap {TEST_OP} − {BASE_OP} [{LEVEL:.0%} CI] "
             f"| seeds | significant |",
             "|" + "---:|" * len(heads) + "---:|---:|---:|---:|:---:|"]
    for row in summary.rows:
        keys = [_fmt(v) for v in row.key] or ["all"]
        gap = row.gap
        lines.append(f"| {' | '.join(keys)} | {_pm(row.values(BASE_OP))} | {_pm(row.values(TEST_OP))} "
                     f"| {_gap_text(gap)} | {gap.n} | {_significant_text(gap)} |")
    return lines


def _op_text(op: Any) -> str:
    """A per-stage op list as the user typed it: [sum,sum,star,star]."""
    return f"[{','.join(map(str, op))}]" if isinstance(op, (list, tuple)) else str(op)


def write_markdown(jobs: Sequence[Job], summary: Summary, path: Path, source: str,
                   extra: Sequence[str] = ()) -> None:
    counts: Dict[str, int] = {}
    for job in jobs:
        counts[job.status] = counts.get(job.status, 0) + 1
    by = " × ".join(summary.axes) or "all runs"
    lines = [f"# {summary.title}", "",
             f"Source: `{source}` · metric: `{summary.metric}` (%) · jobs: "
             + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())), "",
             f"## By {by}", "", *markdown_table(summary), "",
             f"Cells: mean ± sample std over seeds. Gap: {TEST_OP} − {BASE_OP} per seed (paired), its mean and "
             f"{LEVEL:.0%} t interval (n − 1 degrees of freedom); significant = the interval excludes 0. "
             "Only completed jobs count."]
    unpaired = [row_label(summary, r) for r in summary.rows
                if r.gap.n < max(len(r.values(BASE_OP)), len(r.values(TEST_OP)))]
    if unpaired:
        lines += ["", f"Rows whose {BASE_OP} and {TEST_OP} runs are not all paired by seed (the gap uses "
                  f"the pairs only): {'; '.join(unpaired)}."]
    others = [(r, op) for r in summary.rows for op in sorted(r.by_op, key=str) if op not in (BASE_OP, TEST_OP)]
    if others:  # e.g. per-stage op lists: no paired gap, but their numbers belong in the report
        lines += ["", "## Other ops (not in the gap)", "",
                  f"| {', '.join(summary.axes) or 'runs'} | op | {summary.metric} | n |", "|---|---|---|---|"]
        lines += [f"| {row_label(summary, r)} | `{_op_text(op)}` | {_pm(r.values(op))} | {len(r.values(op))} |"
                  for r, op in others]
    lines += [*extra]
    bad = [j for j in jobs if j.status != "completed"]
    if bad:
        lines += ["", "## Jobs not completed", "", "| job | status | error |", "|---|---|---|"]
        lines += [f"| `{j.name}` | {j.status} | {(j.error or '').replace('|', '/')} |" for j in bad]
    path.write_text("\n".join(lines) + "\n")


def plot(summary: Summary, path: Path) -> None:
    """Paper Fig. 1 (right) style: paired bars per row with std error bars, the gap on a twin axis."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary.rows
    x = list(range(len(rows)))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(rows) + 2.5), 4.6))
    lows = []
    for offset, op, color in ((-0.2, BASE_OP, "#9ecae1"), (0.2, TEST_OP, "#fdae6b")):
        stats = [mean_std(r.values(op)) for r in rows]
        means = [m if m is not None else 0.0 for m, _ in stats]
        errs = [s or 0.0 for _, s in stats]
        ax.bar([i + offset for i in x], means, 0.4, yerr=errs, capsize=3, color=color, edgecolor="grey",
               linewidth=0.5, label=op)
        lows += [m - e for (m, _), e in zip(stats, errs) if m is not None]
    if lows:  # start the bars near the data, as the paper does, so that gaps of a point are visible
        top = max(max(mean_std(r.values(op))[0] or 0 for op in (BASE_OP, TEST_OP)) for r in rows)
        ax.set_ylim(max(0.0, 5 * math.floor((min(lows) - 5) / 5)), min(100.0, top + 5))
    ax.set_ylabel(f"{METRIC_LABELS.get(summary.metric, summary.metric)} (%)")
    ax.set_xticks(x)
    labels = [row_label(summary, r) for r in rows]
    ax.set_xticklabels(labels, rotation=0 if len(summary.axes) <= 1 else 30,
                       ha="center" if len(summary.axes) <= 1 else "right")
    ax.set_xlabel(summary.axes[0] if len(summary.axes) == 1 else ("configuration" if summary.axes else ""))

    gaps = [r.gap for r in rows]
    gx = [i for i, g in zip(x, gaps) if g.mean is not None]
    if gx:
        ax2 = ax.twinx()
        gm = [g.mean for g in gaps if g.mean is not None]
        gerr = [[(g.mean - g.lo) if g.lo is not None else 0.0 for g in gaps if g.mean is not None],
                [(g.hi - g.mean) if g.hi is not None else 0.0 for g in gaps if g.mean is not None]]
        ax2.errorbar(gx, gm, yerr=gerr, color="#d62728", linestyle="--", marker="^", capsize=3,
                     label=f"gap ({TEST_OP} − {BASE_OP}), {LEVEL:.0%} CI")
        ax2.axhline(0, color="#d62728", linewidth=0.6, alpha=0.5)
        ax2.set_ylabel(f"accuracy gap ({TEST_OP} over {BASE_OP}, points)", color="#d62728")
        ax2.tick_params(axis="y", colors="#d62728")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8, framealpha=0.9)
    else:
        ax.legend(loc="upper left", fontsize=8)
    ax.set_title(textwrap.fill(summary.title, 75), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def write_outputs(jobs: Sequence[Job], out_dir, source: str, metric: Optional[str] = None,
                  extra: Sequence[str] = ()) -> Tuple[Summary, List[Path]]:
    """The three summary files for ``jobs`` into ``out_dir`` (shared by aggregate and compare)."""
    if not jobs:
        raise StarbenchError(f"no jobs found in {source}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(jobs, metric)
    paths = [out_dir / CSV_FILE, out_dir / MD_FILE, out_dir / FIG_FILE]
    write_csv(jobs, summary, paths[0])
    write_markdown(jobs, summary, paths[1], source, extra)
    plot(summary, paths[2])
    return summary, paths


def task_reports(sweep_dir: Path, jobs: Sequence[Job]) -> List[str]:
    """Extra markdown (and figures) from tasks that define ``sweep_report(sweep_dir, jobs)``."""
    lines: List[str] = []
    for task in sorted({j.record.get("task") for j in jobs if j.record.get("task")}):
        try:
            module = importlib.import_module(f"experiments.{task}")
        except ImportError:
            continue
        if hasattr(module, "sweep_report"):
            lines += module.sweep_report(sweep_dir, [j for j in jobs if j.record.get("task") == task])
    return lines


def aggregate(sweep_dir, metric: Optional[str] = None, wandb: Any = "auto") -> List[Path]:
    """Summarise a sweep dir in place. ``wandb``: a logger config to log a summary run with, None
    for no W&B, or "auto" to use the jobs' own logger config when it is wandb."""
    sweep_dir = Path(sweep_dir)
    jobs = load_jobs(sweep_dir)
    summary, paths = write_outputs(jobs, sweep_dir, str(sweep_dir), metric, task_reports(sweep_dir, jobs))
    if wandb == "auto":
        wandb = _jobs_logger(jobs)
    if wandb:
        log_to_wandb(sweep_dir, jobs, summary, paths, wandb)
    return paths


def _jobs_logger(jobs: Sequence[Job]) -> Optional[Dict[str, Any]]:
    for job in jobs:
        config = _read_yaml(job.run_dir / ".hydra" / "config.yaml") if job.run_dir else None
        logger = (config or {}).get("logger") or {}
        if logger:
            return logger if logger.get("name") == "wandb" else None
    return None


def log_to_wandb(sweep_dir: Path, jobs: Sequence[Job], summary: Summary, paths: Sequence[Path], logger) -> None:
    """One run named "summary" (job_type summary) in the sweep's group: both tables and the figure.
    Its id comes from the sweep dir, so re-aggregating updates it instead of adding another."""
    import wandb
    from .tracking import wandb_mode
    run_id = "summary-" + hashlib.sha1(str(sweep_dir.resolve()).encode()).hexdigest()[:12]
    run = wandb.init(project=logger.get("project") or "starbench", entity=logger.get("entity"),
                     group=sweep_group(sweep_dir), name="summary", job_type="summary", id=run_id,
                     resume="allow", dir=str(sweep_dir), mode=logger.get("mode") or wandb_mode(),
                     config={"sweep_dir": str(sweep_dir), "metric": summary.metric, "axes": summary.axes},
                     settings=wandb.Settings(console="off", silent=True, x_disable_stats=True),
                     reinit="finish_previous")
    with paths[0].open() as f:
        rows = list(csv.reader(f))
    heads = [*(summary.axes or ["runs"]), f"{BASE_OP}_mean", f"{BASE_OP}_std", f"{TEST_OP}_mean",
             f"{TEST_OP}_std", "gap", "gap_lo", "gap_hi", "seeds", "significant"]
    table = []
    for row in summary.rows:
        gap = row.gap
        table.append([*([_fmt(v) for v in row.key] or ["all"]), *mean_std(row.values(BASE_OP)),
                      *mean_std(row.values(TEST_OP)), gap.mean, gap.lo, gap.hi, gap.n, _significant_text(gap)])
    run.log({"summary/star_vs_sum": wandb.Table(columns=heads, data=table),
             "summary/jobs": wandb.Table(columns=rows[0], data=rows[1:]),
             "summary/figure": wandb.Image(str(paths[2]))})
    run.summary["summary/jobs_completed"] = sum(j.status == "completed" for j in jobs)
    run.summary["summary/jobs_total"] = len(jobs)
    run.finish()
