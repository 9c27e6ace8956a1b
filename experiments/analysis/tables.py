"""Jobs -> a ``Summary`` (rows by the sweep's axes, each op paired by seed with the reference op) ->
``summary.csv`` and the markdown of ``summary.md``.

The reference op is ``sum`` unless one is given (``summarize(jobs, reference="max")``, ``scripts/aggregate.py
--reference max``); every other op of the sweep that is a name (per-stage op lists stay in "Other ops") gets its
own paired gap, 95% t interval, significance and pooled test against it. A sweep of star and sum alone writes
the files it always wrote (star − sum); with more ops the per-row table has one line per (row, op) and the
pooled test one line per op."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from ..errors import StarbenchError
from ..records.files import atomic_write_text
from .jobs import Job
from .pooled import Pooled, pooled
from .pooled import as_dict as pooled_fields
from .pooled import markdown as pooled_markdown
from .pooled import markdown_many as pooled_markdown_many
from .stats import LEVEL, Gap, mean_std, paired_diffs, paired_gap, trend

BASE_OP, TEST_OP = "sum", "star"   # the default reference op, and the op listed first among the others
METRIC_LABELS = {"top1": "Top-1 accuracy", "top5": "Top-5 accuracy", "best_top1": "Best-epoch top-1 accuracy",
                 "map50_95": "mAP50-95", "map50": "mAP50"}
# A task whose metric means something else than its name says (moons scores its 100 training points).
TASK_METRIC_LABELS = {("moons", "top1"): "Training accuracy", ("moons", "best_top1"): "Best-epoch training accuracy"}
METRICS = ("epoch", "top1", "top5", "best_top1", "params", "flops", "train_time_s", "train_images_per_s")
# Record fields that name a run rather than measure it (so they are not extra metric columns).
IDENTITY = {"width", "depth", "seed", "epochs", "num_classes", "in_chans", "image_size", "train_size", "imgsz",
            "threads"}
# Row axes are picked in this order; a knob that only repeats an earlier one (model.act when
# model.name varies) is left out of the rows, though it stays in summary.csv.
AXIS_PRIORITY = ("model.name", "model.variant", "model.act", "width", "depth", "data.name", "trainer.epochs")
PAIR_KEYS = ("op", "seed")
# Optimiser and regularisation knobs: what a tuning sweep searches over (analysis.tuning), and what may be set per op
# (each op at its own tuned setting) without splitting the rows its runs pair in.
TUNABLE = ("trainer.lr", "trainer.weight_decay", "trainer.warmup_epochs", "trainer.label_smoothing",
           "trainer.clip_grad", "trainer.min_lr", "trainer.betas", "model.drop_path", "model.layer_scale")
MODEL_LABELS = {"demonet": "DemoNet", "starnet": "StarNet"}


@dataclass
class Row:
    key: Tuple[Any, ...]                                      # values of the axes
    by_op: Dict[Any, Dict[Any, float]] = field(default_factory=dict)  # op -> seed -> metric
    reference: Any = BASE_OP                                  # the op every gap is taken against
    test: Any = TEST_OP                                       # the first compared op (``gap``)

    def values(self, op: str) -> List[float]:
        return list(self.by_op.get(op, {}).values())

    def gap_of(self, op: Any) -> Gap:
        """op − reference, paired by seed."""
        return paired_gap(self.by_op.get(self.reference, {}), self.by_op.get(op, {}))

    @property
    def gap(self) -> Gap:
        return self.gap_of(self.test)


@dataclass
class Summary:
    metric: str
    varied: List[str]     # every knob that differs between jobs (the CSV columns)
    axes: List[str]       # the knobs that make the rows
    rows: List[Row]
    title: str
    metric_label: str = ""             # e.g. "Top-1 accuracy", "Training accuracy" (moons)
    baseline: Optional[float] = None   # the linear baseline on the same images (analysis.baseline), if known
    regime: Optional["Regime"] = None  # the trained-regime check, once the baseline is known (``check_regime``)
    reference: Any = BASE_OP           # the op every gap is taken against
    ops: List[Any] = field(default_factory=lambda: [TEST_OP])  # the compared ops, each against the reference
    _pooled_cache: Dict[Any, Tuple[Any, Pooled]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for row in self.rows:  # every row's gaps against this summary's reference
            row.reference, row.test = self.reference, self.ops[0]

    def with_rows(self, rows: List[Row]) -> "Summary":
        """This summary over other rows (a subset of its pairs): every other field kept, the pooled cache fresh."""
        return replace(self, rows=rows, _pooled_cache={})

    @property
    def multi(self) -> bool:
        """More than one op compared with the reference (the long-format tables)."""
        return len(self.ops) > 1

    @property
    def comparison(self) -> str:
        """"star vs sum", "star, max vs sum"."""
        return f"{', '.join(map(str, self.ops))} vs {self.reference}"

    def pooled_of(self, op: Any) -> Pooled:
        """Every (row, seed) pair of ``op`` and the reference at once (analysis.pooled)."""
        pairs = {r.key: (r.by_op.get(self.reference, {}), r.by_op.get(op, {})) for r in self.rows}
        stamp = repr(sorted((repr(k), sorted(b.items(), key=repr), sorted(t.items(), key=repr))
                            for k, (b, t) in pairs.items()))
        cached = self._pooled_cache.get(op)
        if cached is None or cached[0] != stamp:  # the bootstrap is not free: once per op and data
            cached = self._pooled_cache[op] = (stamp, pooled(pairs))
        return cached[1]

    @property
    def pooled(self) -> Pooled:
        """The first compared op's pooled test (star − sum in a star/sum sweep)."""
        return self.pooled_of(self.ops[0])

    @property
    def inseparable(self) -> bool:
        """Every paired gap is exactly 0: the runs cannot tell the ops apart (too short or too small)."""
        ref = self.reference
        gaps = [r.by_op[op][s] - r.by_op[ref][s] for op in self.ops for r in self.rows
                if ref in r.by_op and op in r.by_op for s in r.by_op[ref] if s in r.by_op[op]]
        return bool(gaps) and all(g == 0 for g in gaps)

    @property
    def reference_hint(self) -> Optional[str]:
        """Where no completed run has the reference op, no gap can be taken: which ops could be the reference instead,
        and how to name one (every gap would otherwise read "–" and the figure's gap panel stay empty)."""
        seen = {op for r in self.rows for op in r.by_op}
        if not seen or self.reference in seen:
            return None
        names = ", ".join(sorted(_op_text(op) for op in seen))
        return (f"No completed {self.reference} run (the reference op), so no gap: name one of this sweep's ops "
                f"({names}) as the reference: `python scripts/aggregate.py SWEEP_DIR --reference OP`, or at the end "
                "of a multirun `+hydra.callbacks.sweep_summary.reference=OP`.")

    @property
    def caveat(self) -> Optional["Caveat"]:
        """What a reader must know before any number of this sweep, or None: the runs cannot separate the ops, most
        are under-trained, or some are flagged by the trained-regime check. summary.md opens with it, the figure's
        title, the W&B summary run and the W&B report carry it, so that no route shows the numbers without it."""
        regime = self.regime
        under = regime is not None and regime.under_trained
        low = (f"{len(regime.low)} of {len(regime.done)} runs do not beat the linear baseline "
               f"({regime.baseline:.2f}%) by {BASELINE_MARGIN:g} points (the trained-regime check below)"
               if regime is not None else "")
        if self.inseparable:
            return Caveat("NOT EVIDENCE: the runs cannot separate the ops",
                          "**Not evidence either way: these runs cannot separate the ops.** Every paired gap is "
                          "exactly 0 (too short or too small a training for the blocks to leave their near-identity "
                          "start)" + (f"; and they are under-trained: {low}." if under else "."))
        if under:
            return Caveat("NOT EVIDENCE: under-trained",
                          f"**Not evidence about the ops: under-trained.** {low}; the gaps and tests here describe "
                          "these runs only, whatever their significance.")
        if regime is not None and regime.flagged:
            n = len(regime.flagged)
            return Caveat(f"CAVEAT: {n} of {len(regime.done)} runs flagged",
                          f"**Caveat: {n} of {len(regime.done)} runs {'are' if n != 1 else 'is'} flagged by the "
                          f"trained-regime check** (below the linear baseline + {BASELINE_MARGIN:g} points, or still "
                          f"gaining {PLATEAU_GAIN:g} or more in the last epoch; listed below, kept in every table).")
        return None


def compared_ops(ops: Sequence[Any], reference: Any = BASE_OP) -> List[Any]:
    """The ops that get a gap against ``reference``: every op that is a name (a per-stage op list is not),
    star first, then by name; star (or sum) when the sweep has no other."""
    named = sorted({op for op in ops if isinstance(op, str) and op != reference},
                   key=lambda op: (op != TEST_OP, op))
    return named or [TEST_OP if reference != TEST_OP else BASE_OP]


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


def op_settings(jobs: Sequence[Job], varied: Sequence[str]) -> List[str]:
    """The ``TUNABLE`` knobs set per op: one value for each op wherever the other knobs (but the other tunable ones and
    the seed) are equal, several across the ops. Each op ran at its own setting (its tuned lr, say): the setting is
    part of the op, not a row of its own, so the ops still pair by seed."""
    rows = [k for k in varied if k not in PAIR_KEYS and k not in TUNABLE]
    out = []
    for key in (k for k in varied if k in TUNABLE):
        per_op: Dict[Tuple[Any, ...], set] = {}
        per_row: Dict[Tuple[Any, ...], set] = {}
        for job in jobs:
            row = tuple(job.get(k) for k in rows)
            per_op.setdefault((job.get("op"), *row), set()).add(job.get(key))
            per_row.setdefault(row, set()).add(job.get(key))
        if all(len(v) == 1 for v in per_op.values()) and any(len(v) > 1 for v in per_row.values()):
            out.append(key)
    return out


def choose_axes(jobs: Sequence[Job], varied: Sequence[str]) -> List[str]:
    """The varied knobs (besides op and seed, and the settings each op has its own of) that split the jobs further, in
    priority order."""
    axes: List[str] = []
    groups = 1
    per_op = set(op_settings(jobs, varied))
    for key in varied:
        if key in PAIR_KEYS or key in per_op:
            continue
        n = len({tuple(j.get(k) for k in (*axes, key)) for j in jobs})
        if n > groups:
            axes.append(key)
            groups = n
    return axes


def _title(jobs: Sequence[Job], axes: Sequence[str], reference: Any = BASE_OP,
           ops: Sequence[Any] = (TEST_OP,)) -> str:
    """"Star vs sum: DemoNet (depth 12) on fashion_mnist (4 epochs, 3 seeds)", from the completed jobs."""
    done = [j for j in jobs if j.status == "completed"] or list(jobs)

    def values(name: str, knob: str) -> List[str]:
        vs = {_hashable_key(j.record.get(name, j.get(knob))) for j in done}
        return [_fmt(v) for v in sorted(vs, key=_sort_key) if _fmt(v)]  # 1/2/4/16, not 1/16/2/4

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
    detail = [f"{'/'.join(epochs)} epoch{'s' if epochs != ['1'] else ''}"] if epochs else []
    cells: Dict[Tuple[Any, ...], int] = {}  # runs per (row, op): the title must not claim more than a cell has
    for j in done:
        key = (*(_hashable_key(j.get(a)) for a in axes), _hashable_key(j.get("op")))
        cells[key] = cells.get(key, 0) + 1
    lo, hi = min(cells.values(), default=0), max(cells.values(), default=0)
    detail.append(f"{lo} seed{'s' if lo != 1 else ''}" if lo == hi else f"{lo}–{hi} seeds per cell")
    compared = ", ".join(map(str, ops))
    if ":" not in str(ops[0]):  # an op by import path ("mypkg.ops:My_op") stays as written: the module's spelling
        compared = f"{compared[:1].upper()}{compared[1:].lower() if len(ops) == 1 else compared[1:]}"
    return (f"{compared} vs {reference}: "
            f"{', '.join(sorted(models)) or 'model?'}"
            f"{' (' + ', '.join(shape) + ')' if shape else ''} on "
            f"{'/'.join(values('data', 'data.name')) or 'data?'} ({', '.join(detail)})")


def _hashable_key(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def metric_label(jobs: Sequence[Job], metric: str) -> str:
    tasks = {j.record.get("task") for j in jobs if j.status == "completed"}
    if len(tasks) == 1 and (next(iter(tasks)), metric) in TASK_METRIC_LABELS:
        return TASK_METRIC_LABELS[(next(iter(tasks)), metric)]
    label = METRIC_LABELS.get(metric, metric)
    done = [j for j in jobs if j.status == "completed"]
    if metric in ("top1", "top5") and done and all(j.get("data.val_from") == "train" for j in done):
        label = f"Validation {label[0].lower()}{label[1:]}"  # held-out training images (the pilot), not the test set
    return label


def default_metric(jobs: Sequence[Job]) -> str:
    """mAP50-95 for a sweep of detectors, top-1 otherwise."""
    tasks = {j.record.get("task") for j in jobs if j.status == "completed"}
    return "map50_95" if tasks == {"detect"} else "top1"


def summarize(jobs: Sequence[Job], metric: Optional[str] = None, reference: Optional[str] = None) -> Summary:
    """``reference``: the op every gap is taken against (None: sum, not checked; a name given must be an op of
    the sweep's completed jobs)."""
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
    seen = {op for r in rows.values() for op in r.by_op}
    if reference is not None and completed and reference not in seen:
        names = ", ".join(sorted(map(_op_text, seen))) or "none"
        raise StarbenchError(f"reference op '{reference}' has no completed job in this sweep (its ops: {names})")
    reference = BASE_OP if reference is None else reference
    ops = compared_ops(seen, reference)
    ordered = [rows[k] for k in sorted(rows, key=lambda k: tuple(_sort_key(v) for v in k))]
    return Summary(metric, varied, axes, ordered, _title(jobs, axes, reference, ops), metric_label(jobs, metric),
                   reference=reference, ops=ops)


def format_value(value: Any) -> str:
    """A knob's value as a table cell or label: "" for None, a list as [a,b]."""
    if value is None:
        return ""
    if isinstance(value, tuple):
        return "[" + ",".join(map(str, value)) + "]"
    return str(value)


_fmt = format_value


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
    if gap.significant is None:
        return f"n/a ({gap.reason})" if gap.mean is not None else "n/a"
    return "yes" if gap.significant else "no"


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
    # The sweep-level numbers (baseline, pooled test) repeat on every row, so the file stays one table.
    sweep_level: Dict[str, Any] = {"linear_baseline": summary.baseline}
    if summary.multi:  # each op's pooled test against the reference, its fields suffixed with the op
        sweep_level["reference_op"] = summary.reference
        for op in summary.ops:
            sweep_level.update({f"{k}_{op}": v for k, v in pooled_fields(summary.pooled_of(op)).items()})
    else:
        sweep_level.update(pooled_fields(summary.pooled))
    writer.writerow(["job", "status", "error", *summary.varied, *metrics, "last_epoch_gain", *sweep_level])
    for job in jobs:
        gain = last_epoch_gain(job, summary.metric) if job.status == "completed" else None
        writer.writerow([job.name, job.status, job.error or "", *(_fmt(job.get(k)) for k in summary.varied),
                         *(_fmt(job.record.get(m)) for m in metrics), _fmt(gain),
                         *(_fmt(v) for v in sweep_level.values())])
    atomic_write_text(path, out.getvalue())


def markdown_table(summary: Summary) -> List[str]:
    heads = summary.axes or ["runs"]
    base, test = summary.reference, summary.ops[0]
    if summary.multi:
        return _long_table(summary, heads)
    lines = [f"| {' | '.join(heads)} | {base} | {test} | gap {test} − {base} [{LEVEL:.0%} CI] "
             f"| seeds | significant |",
             "|" + "---:|" * len(heads) + "---:|---:|---:|---:|:---:|"]
    for row in summary.rows:
        keys = [_fmt(v) for v in row.key] or ["all"]
        gap = row.gap
        lines.append(f"| {' | '.join(keys)} | {_pm(row.values(base))} | {_pm(row.values(test))} "
                     f"| {_gap_text(gap)} | {gap.n} | {_significant_text(gap)} |")
    return lines


def _long_table(summary: Summary, heads: Sequence[str]) -> List[str]:
    """Several compared ops: one line per (row, op), the reference first, each other op with its gap."""
    ref = summary.reference
    lines = [f"| {' | '.join(heads)} | op | {summary.metric} | gap op − {ref} [{LEVEL:.0%} CI] "
             "| seeds | significant |",
             "|" + "---:|" * len(heads) + ":---|---:|---:|---:|:---:|"]
    for row in summary.rows:
        keys = " | ".join([_fmt(v) for v in row.key] or ["all"])
        lines.append(f"| {keys} | {ref} (reference) | {_pm(row.values(ref))} | | | |")
        for op in summary.ops:
            gap = row.gap_of(op)
            lines.append(f"| {keys} | {op} | {_pm(row.values(op))} | {_gap_text(gap)} | {gap.n} "
                         f"| {_significant_text(gap)} |")
    return lines


# docs/protocol.md, "a trained regime": a model must beat the linear baseline clearly and have plateaued.
BASELINE_MARGIN = 2.0
PLATEAU_GAIN = 0.3
FLAGGED_SHOWN = 12


def last_epoch_gain(job: Job, metric: str) -> Optional[float]:
    """The metric's change over the run's last epoch (from metrics.json's history), if it has two epochs."""
    history = [row.get(metric) for row in job.record.get("history") or [] if isinstance(row, dict)]
    history = [v for v in history if isinstance(v, (int, float))]
    return history[-1] - history[-2] if len(history) >= 2 else None


class Caveat(NamedTuple):
    flag: str   # a few words, for the figure's title and the W&B report's title
    text: str   # the sentence summary.md and the W&B report open with


@dataclass
class Regime:
    """The trained-regime check (docs/protocol.md): which completed runs beat the linear baseline by
    ``BASELINE_MARGIN`` and which still gained ``PLATEAU_GAIN`` or more in their last epoch. A run with fewer than two
    epochs of history has no last-epoch gain: its plateau is not checked (``unmeasured``), not counted as reached."""
    baseline: float
    done: List[Job]
    low: List[Job]
    rising: List[Job]
    unmeasured: List[Job]
    gains: Dict[str, Optional[float]]

    @property
    def under_trained(self) -> bool:
        return len(self.low) > len(self.done) / 2

    @property
    def flagged(self) -> List[Job]:
        return list({id(j): j for j in (*self.low, *self.rising)}.values())


def regime_of(jobs: Sequence[Job], summary: Summary) -> Optional[Regime]:
    """The trained-regime check of ``jobs`` against ``summary.baseline`` (None without a baseline or a completed run)."""
    done = [j for j in jobs if j.metric(summary.metric) is not None]
    if summary.baseline is None or not done:
        return None
    gains = {j.name: last_epoch_gain(j, summary.metric) for j in done}
    return Regime(summary.baseline, done,
                  low=[j for j in done if j.metric(summary.metric) < summary.baseline + BASELINE_MARGIN],
                  rising=[j for j in done if gains[j.name] is not None and gains[j.name] >= PLATEAU_GAIN],
                  unmeasured=[j for j in done if gains[j.name] is None], gains=gains)


def check_regime(jobs: Sequence[Job], summary: Summary) -> Optional[Regime]:
    """``summary.regime`` from ``jobs`` and ``summary.baseline`` (set once the baseline is known)."""
    summary.regime = regime_of(jobs, summary)
    return summary.regime


def regime_lines(summary: Summary) -> List[str]:
    """The trained-regime check of summary.md: how many runs beat the baseline by the margin and plateaued."""
    regime = summary.regime
    if regime is None:
        return []
    done, gains, metric = regime.done, regime.gains, summary.metric
    measured = len(done) - len(regime.unmeasured)
    lines = ["", "## Trained-regime check (docs/protocol.md)", "",
             f"- {len(done) - len(regime.low)} of {len(done)} runs beat the linear baseline ({regime.baseline:.2f}%) "
             f"by at least {BASELINE_MARGIN:g} points."]
    if measured:
        lines.append(f"- {measured - len(regime.rising)} of {measured} runs gained less than {PLATEAU_GAIN:g} "
                     "points in their last epoch.")
    if regime.unmeasured:
        n = len(regime.unmeasured)
        lines.append(f"- {n} of {len(done)} run{'s have' if n != 1 else ' has'} fewer than two epochs of history: "
                     "whether they plateaued is not measured.")

    def knobs(job: Job) -> List[Any]:  # by its knobs, the same whether read from run dirs or from W&B
        return [_hashable_key(job.get(k)) for k in (*summary.axes, "op", "seed")]

    def name(job: Job) -> str:
        return ", ".join(f"{k}={_fmt(v)}" for k, v in zip((*summary.axes, "op", "seed"), knobs(job)))

    flagged = sorted(regime.flagged, key=lambda j: [_sort_key(v) for v in knobs(j)])  # width 8 before 12
    if flagged:
        shown = [f"{name(j)} ({j.metric(metric):.2f}"
                 + (f", last epoch {gains[j.name]:+.2f}" if gains[j.name] is not None else "") + ")"
                 for j in flagged[:FLAGGED_SHOWN]]
        more = len(flagged) - len(shown)
        lines.append("- Flagged (kept in every table): " + "; ".join(shown)
                     + (f"; and {more} more (summary.csv: last_epoch_gain, linear_baseline)" if more else "") + ".")
    if regime.under_trained:
        lines.append(f"- **Most runs are below the baseline + {BASELINE_MARGIN:g}: under-trained, not evidence "
                     "about the ops.**")
    return lines


def _op_text(op: Any) -> str:
    """A per-stage op list as the user typed it: [sum,sum,star,star]."""
    return f"[{','.join(map(str, op))}]" if isinstance(op, (list, tuple)) else str(op)


def two_level_lines(summary: Summary) -> List[str]:
    """With one axis of two levels (no_act: ``model.act`` gelu, none): each op's change from the first level to the
    second, paired by seed, and each compared op's gap change, (op − reference at the second level) − (op −
    reference at the first), paired by seed: the paper's Table 4 question, whether the reference loses more than
    the op when the level changes. Nothing for other sweeps."""
    if len(summary.axes) != 1 or len(summary.rows) != 2:
        return []
    first, second = summary.rows  # in the axis' sorted order
    axis, ref = summary.axes[0], summary.reference
    a, b = _fmt(first.key[0]), _fmt(second.key[0])

    def gaps(row: Row, op: Any) -> Dict[Any, float]:
        return paired_diffs(row.by_op.get(ref, {}), row.by_op.get(op, {}))

    lines = ["", f"## Change from {axis}={a} to {axis}={b}", "",
             f"| | change ({b} − {a}) [{LEVEL:.0%} CI] | n | significant |", "|---|---|---|---|"]
    for op in (ref, *summary.ops):
        g = paired_gap(first.by_op.get(op, {}), second.by_op.get(op, {}))
        lines.append(f"| {_op_text(op)} | {_gap_text(g)} | {g.n} | {_significant_text(g)} |")
    for op in summary.ops:
        g = paired_gap(gaps(first, op), gaps(second, op))
        lines.append(f"| gap {_op_text(op)} − {_op_text(ref)} | {_gap_text(g)} | {g.n} | {_significant_text(g)} |")
    lines += ["", f"Change: per seed, the run at {axis}={b} minus the run of the same op and seed at {axis}={a}; "
              f"its mean and {LEVEL:.0%} t interval. Gap: the same for the paired gap op − {ref}, so a positive value "
              f"means {ref} loses more (or gains less) than the op."]
    return lines


def has_trend(summary: Summary) -> bool:
    """One numeric axis of three or more positive levels: the sweeps with a trend statistic (amendment 4)."""
    if len(summary.axes) != 1:
        return False
    levels = [row.key[0] for row in summary.rows]
    return len(levels) >= 3 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in levels)


def gaps_by_level(summary: Summary, op: Any) -> Dict[Any, Dict[Any, float]]:
    """level of the one axis -> seed -> paired gap op − reference."""
    return {row.key[0]: paired_diffs(row.by_op.get(summary.reference, {}), row.by_op.get(op, {}))
            for row in summary.rows}


def trend_of(summary: Summary, op: Any) -> Gap:
    """``op``'s gap change per doubling of the sweep's one axis (``stats.trend``)."""
    return trend(gaps_by_level(summary, op))


def trend_lines(summary: Summary) -> List[str]:
    """With one numeric axis of three or more levels (fig1_width's widths, table3_depth's depths): for each
    compared op, how the paired gap changes per doubling of the axis, fitted per seed (the slope of its gaps on
    log2 of the level), mean and t interval over seeds. The paper's Fig. 1 has the gap shrink as width grows
    (a negative slope). docs/protocol.md, amendment 4. Nothing for other sweeps."""
    if not has_trend(summary):
        return []
    axis, ref = summary.axes[0], summary.reference
    lines = ["", f"## Trend of the gap with {axis}", "",
             f"| | gap change per doubling of {axis} (points) [{LEVEL:.0%} CI] | seeds | significant |",
             "|---|---|---|---|"]
    for op in summary.ops:
        g = trend_of(summary, op)
        lines.append(f"| {_op_text(op)} − {_op_text(ref)} | {_gap_text(g)} | {g.n} | {_significant_text(g)} |")
    lines += ["", f"Per seed, the least-squares slope of its paired gaps op − {ref} on log2({axis}) (a seed counts "
              f"with gaps at 3 or more levels); their mean and {LEVEL:.0%} t interval over seeds. Negative: the gap "
              f"shrinks as {axis} grows."]
    return lines


def op_setting_lines(jobs: Sequence[Job], summary: Summary) -> List[str]:
    """Where each op ran at its own setting (its tuned lr, say): which, per row, since the gap compares op+setting."""
    settings = op_settings(jobs, summary.varied)
    if not settings:
        return []
    seen: Dict[Tuple[Any, ...], Tuple[Any, ...]] = {}
    for job in jobs:
        key = (*(job.get(a) for a in summary.axes), job.get("op"))
        seen.setdefault(key, tuple(job.get(k) for k in settings))
    heads = [*summary.axes, "op", *settings]
    lines = ["", "## Each op at its own setting", "", "| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for key in sorted(seen, key=lambda k: tuple(_sort_key(_hashable_key(v)) for v in k)):
        lines.append("| " + " | ".join(_fmt(v) for v in (*key, *seen[key])) + " |")
    lines += ["", "The gaps above compare each op at its own setting (e.g. its tuned learning rate), not at a shared one."]
    return lines


def write_markdown(jobs: Sequence[Job], summary: Summary, path: Path, source: str,
                   extra: Sequence[str] = ()) -> None:
    counts: Dict[str, int] = {}
    for job in jobs:
        counts[job.status] = counts.get(job.status, 0) + 1
    by = " × ".join(summary.axes) or "all runs"
    base, test = summary.reference, summary.ops[0]
    gap_what = f"each op − {base}" if summary.multi else f"{test} − {base}"
    multiple = (f" Each op's interval and test stand alone: no correction for its being one of "
                f"{len(summary.ops)} comparisons with {base} (the pooled section gives Bonferroni intervals too)."
                if summary.multi else "")
    if summary.regime is None:
        check_regime(jobs, summary)
    caveat = summary.caveat
    lines = [f"# {summary.title}", "",
             f"Source: `{source}` · metric: `{summary.metric}` (%) · jobs: "
             + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())), "",
             *([caveat.text, ""] if caveat else []),
             *([f"**{summary.reference_hint}**", ""] if summary.reference_hint else []),
             f"## By {by}", "", *markdown_table(summary), "",
             f"Cells: mean ± sample std over seeds. Gap: {gap_what} per seed (paired), its mean and "
             f"{LEVEL:.0%} t interval (n − 1 degrees of freedom); significant = the interval excludes 0, which needs "
             "at least 3 pairs and paired gaps that are not all equal: otherwise n/a, with the reason. "
             "Only completed jobs count." + multiple]
    if summary.baseline is not None:
        lines += ["", f"Linear baseline (softmax regression on the same training images, same evaluation images): "
                  f"**{summary.baseline:.2f}%**."]
    if summary.multi:
        results = {op: summary.pooled_of(op) for op in summary.ops}
        if any(p.n_pairs for p in results.values()):
            lines += ["", *pooled_markdown_many(results, base)]
    else:
        pooled_result = summary.pooled
        if pooled_result.n_pairs:
            lines += ["", *pooled_markdown(pooled_result, base, test)]
    for op in summary.ops:
        unpaired = [row_label(summary, r) for r in summary.rows
                    if r.gap_of(op).n < max(len(r.values(base)), len(r.values(op)))]
        if unpaired:
            lines += ["", f"Rows whose {base} and {op} runs are not all paired by seed (the gap uses "
                      f"the pairs only): {'; '.join(unpaired)}."]
    compared = (base, *summary.ops)
    others = [(r, op) for r in summary.rows for op in sorted(r.by_op, key=str) if op not in compared]
    if others:  # e.g. per-stage op lists: no paired gap, but their numbers belong in the report
        lines += ["", "## Other ops (not in the gap)", "",
                  f"| {', '.join(summary.axes) or 'runs'} | op | {summary.metric} | n |", "|---|---|---|---|"]
        lines += [f"| {row_label(summary, r)} | `{_op_text(op)}` | {_pm(r.values(op))} | {len(r.values(op))} |"
                  for r, op in others]
    lines += op_setting_lines(jobs, summary)
    lines += two_level_lines(summary)
    lines += trend_lines(summary)
    lines += regime_lines(summary)
    lines += [*extra]
    bad = [j for j in jobs if j.status != "completed"]
    if bad:
        lines += ["", "## Jobs not completed", "", "| job | status | error |", "|---|---|---|"]
        lines += [f"| `{j.name}` | {j.status} | {(j.error or '').replace('|', '/')} |" for j in bad]
    atomic_write_text(path, "\n".join(lines) + "\n")
