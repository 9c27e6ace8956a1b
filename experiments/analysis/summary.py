"""Jobs -> a ``Summary``: rows by the sweep's axes, each op paired by seed with the reference op, and the statistics
the outputs read from it (each row's paired gap, the pooled test, the caveat a reader must see first).

The reference op is ``sum`` unless one is given (``summarize(jobs, reference="max")``, ``scripts/aggregate.py
--reference max``); every other op of the sweep that is a name (per-stage op lists stay in "Other ops") gets its
own paired gap, 95% t interval, significance and pooled test against it."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from ..errors import StarbenchError
from .format import as_key, format_op, format_value, value_order
from .jobs import Job
from .pooled import Pooled, pooled
from .regime import BASELINE_MARGIN, PLATEAU_GAIN, Regime, regime_of
from .stats import Gap, paired_gap

BASE_OP, TEST_OP = "sum", "star"   # the default reference op, and the op listed first among the others
METRIC_LABELS = {"top1": "Top-1 accuracy", "top5": "Top-5 accuracy", "best_top1": "Best-epoch top-1 accuracy",
                 "map50_95": "mAP50-95", "map50": "mAP50"}
# A task whose metric means something else than its name says (moons scores its 100 training points).
TASK_METRIC_LABELS = {("moons", "top1"): "Training accuracy", ("moons", "best_top1"): "Best-epoch training accuracy"}
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


class Caveat(NamedTuple):
    flag: str   # a few words, for the figure's title and the W&B report's title
    text: str   # the sentence summary.md and the W&B report open with


@dataclass
class Summary:
    metric: str
    varied: List[str]     # every knob that differs between jobs (the CSV columns)
    axes: List[str]       # the knobs that make the rows
    rows: List[Row]
    title: str
    metric_label: str = ""             # e.g. "Top-1 accuracy", "Training accuracy" (moons)
    baseline: Optional[float] = None   # the linear baseline on the same images (analysis.baseline), if known
    regime: Optional[Regime] = None  # the trained-regime check, once the baseline is known (``check_regime``)
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
        names = ", ".join(sorted(format_op(op) for op in seen))
        return (f"No completed {self.reference} run (the reference op), so no gap: name one of this sweep's ops "
                f"({names}) as the reference: `python scripts/aggregate.py SWEEP_DIR --reference OP`, or at the end "
                "of a multirun `+hydra.callbacks.sweep_summary.reference=OP`.")

    @property
    def caveat(self) -> Optional[Caveat]:
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


def varied_knobs(jobs: Sequence[Job]) -> List[str]:
    """Knobs with more than one value among the jobs that have them; op and seed first."""
    values: Dict[str, set] = {}
    for job in jobs:
        for k, v in job.knobs.items():
            values.setdefault(k, set()).add(v)
    varied = [k for k, vs in values.items() if len(vs) > 1]
    rank = {k: i for i, k in enumerate((*PAIR_KEYS, *AXIS_PRIORITY))}
    return sorted(varied, key=lambda k: (rank.get(k, len(rank)), k))


def per_op_values(jobs: Sequence[Job], knob: str, cells: Sequence[str]) -> Dict[Tuple[Any, ...], set]:
    """(op, *the values of ``cells``) -> the values ``knob`` takes among those jobs: one value per group means each op
    has its own setting of the knob in each cell (``op_settings``), several that it was searched over
    (``tuning.tuned_knobs``)."""
    groups: Dict[Tuple[Any, ...], set] = {}
    for job in jobs:
        groups.setdefault((job.get("op"), *(job.get(k) for k in cells)), set()).add(job.get(knob))
    return groups


def op_settings(jobs: Sequence[Job], varied: Sequence[str]) -> List[str]:
    """The ``TUNABLE`` knobs set per op: one value for each op wherever the other knobs (but the other tunable ones and
    the seed) are equal, several across the ops. Each op ran at its own setting (its tuned lr, say): the setting is
    part of the op, not a row of its own, so the ops still pair by seed."""
    rows = [k for k in varied if k not in PAIR_KEYS and k not in TUNABLE]
    out = []
    for key in (k for k in varied if k in TUNABLE):
        per_op = per_op_values(jobs, key, rows)
        per_row: Dict[Tuple[Any, ...], set] = {}
        for (_op, *row), values in per_op.items():
            per_row.setdefault(tuple(row), set()).update(values)
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
        vs = {as_key(j.record.get(name, j.get(knob))) for j in done}
        return [format_value(v) for v in sorted(vs, key=value_order) if format_value(v)]  # 1/2/4/16, not 1/16/2/4

    models = set()
    for j in done:
        model, variant = (format_value(j.record.get(n, j.get(k))) for n, k in (("model", "model.name"),
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
        key = (*(as_key(j.get(a)) for a in axes), as_key(j.get("op")))
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
        names = ", ".join(sorted(map(format_op, seen))) or "none"
        raise StarbenchError(f"reference op '{reference}' has no completed job in this sweep (its ops: {names})")
    reference = BASE_OP if reference is None else reference
    ops = compared_ops(seen, reference)
    ordered = [rows[k] for k in sorted(rows, key=lambda k: tuple(value_order(v) for v in k))]
    return Summary(metric, varied, axes, ordered, _title(jobs, axes, reference, ops), metric_label(jobs, metric),
                   reference=reference, ops=ops)


def check_regime(jobs: Sequence[Job], summary: Summary) -> Optional[Regime]:
    """``summary.regime`` from ``jobs`` and ``summary.baseline`` (set once the baseline is known)."""
    summary.regime = regime_of(jobs, summary.metric, summary.baseline)
    return summary.regime


def row_label(summary: Summary, row: Row) -> str:
    if not summary.axes:
        return "all"
    if len(summary.axes) == 1:
        return format_value(row.key[0])
    return ", ".join(f"{a}={format_value(v)}" for a, v in zip(summary.axes, row.key))
