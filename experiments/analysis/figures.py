"""``star_vs_sum.png``: accuracy per op and the paired gap, in two panels, for a ``Summary``.

Left: every op's mean over seeds with its 95% t interval; the linear baseline as a reference line. Right:
each compared op's paired gap against the reference op (``Summary.reference``, default sum: star − sum in a
star/sum sweep) with its 95% t interval and a zero line, one colour per op as on the left. Points, not bars, so the
accuracy axis may start near the data without exaggerating a difference. A numeric axis (width, depth,
epochs) is drawn to scale (log when it spans 10x or more) and its points are joined; categories (an
activation, a variant) are not. With two axes, one numeric, the other becomes one series per value (the
budget curve: epochs on x, one line per width). A cell with one run has no interval and is drawn hollow.
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..records.files import atomic_write
from .stats import LEVEL, mean_ci
from .tables import BASE_OP, TEST_OP, Row, Summary, _fmt, row_label

OP_COLORS = {BASE_OP: "#1f77b4", TEST_OP: "#ff7f0e"}
GAP_COLOR = "#d62728"   # the gap of a sweep with one compared op
OTHER_COLORS = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
SERIES_STYLES = (("-", "o"), ("--", "s"), (":", "D"), ("-.", "^"))
# Preferred x axis when a sweep has two axes and both are numeric: the budget first (the budget curve).
X_PRIORITY = ("trainer.epochs", "data.train_size", "width", "depth")
AXIS_LABELS = {"width": "width (channels)", "depth": "depth (blocks)", "trainer.epochs": "training budget (epochs)",
               "data.train_size": "training images", "model.act": "activation", "model.variant": "variant"}


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def layout(summary: Summary) -> Tuple[Optional[int], Optional[int]]:
    """(index of the x axis if it is drawn to scale, index of the series axis or None)."""
    axes = summary.axes
    columns = [[r.key[i] for r in summary.rows] for i in range(len(axes))]
    numeric = [i for i in range(len(axes)) if _numeric(columns[i])]
    if len(axes) == 1 and numeric:
        return 0, None
    if len(axes) == 2 and numeric:
        x = min(numeric, key=lambda i: X_PRIORITY.index(axes[i]) if axes[i] in X_PRIORITY else len(X_PRIORITY))
        return x, 1 - x
    return None, None


def ops_of(summary: Summary) -> List[Any]:
    """Every op with a value: the reference, the compared ops, then the rest (per-stage lists)."""
    seen = {op for r in summary.rows for op in r.by_op}
    first = [summary.reference, *summary.ops]
    others = sorted((op for op in seen if op not in first), key=str)
    return [op for op in first if op in seen] + others


def op_colors(summary: Summary) -> Dict[Any, str]:
    """One colour per op, the same in both panels (sum and star keep theirs)."""
    colors: Dict[Any, str] = {}
    spare = iter(c for c in OTHER_COLORS)
    for op in ops_of(summary):
        colors[op] = OP_COLORS.get(op) if isinstance(op, str) and op in OP_COLORS else next(spare, "0.4")
    return colors


def _op_label(op: Any) -> str:
    return f"[{','.join(map(str, op))}]" if isinstance(op, (list, tuple)) else str(op)


def dodge(x: float, shift: float, log_x: bool, span: float, ratio: float = 1.04) -> float:
    """``x`` moved ``shift`` slots aside (a factor on a log axis, a fraction of ``span`` on a linear one), so
    that points of different ops at one x do not hide each other."""
    return x * ratio ** shift if log_x else x + 0.012 * shift * span


def _err(lo: Optional[float], mean: float, hi: Optional[float]) -> Tuple[float, float]:
    return (0.0, 0.0) if lo is None else (mean - lo, hi - mean)


def plot(summary: Summary, path: Path, flag: Optional[str] = None) -> None:
    """``flag``: a caveat the figure must not be seen without (``Summary.caveat``), put before the title."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    label = summary.metric_label or summary.metric
    baseline = summary.baseline
    x_axis, series_axis = layout(summary)
    series: Dict[Any, List[Row]] = {}
    for row in summary.rows:
        series.setdefault(row.key[series_axis] if series_axis is not None else None, []).append(row)
    categorical = x_axis is None
    cat_labels = [row_label(summary, r) for r in summary.rows]
    position = {id(r): i for i, r in enumerate(summary.rows)}
    xs_all = [r.key[x_axis] for r in summary.rows] if not categorical else []
    log_x = bool(xs_all) and min(xs_all) > 0 and max(xs_all) / min(xs_all) >= 10
    ops = ops_of(summary)
    colors = op_colors(summary)
    ref, compared = summary.reference, summary.ops

    def xpos(row: Row, slot: int, slots: int) -> float:
        """Dodged position so that error bars of different ops/series do not overlap."""
        shift = (slot - (slots - 1) / 2)
        if categorical:
            return position[id(row)] + 0.12 * shift
        return dodge(float(row.key[x_axis]), shift, log_x, max(xs_all) - min(xs_all) or 1.0)

    most_entries = max(len(ops) * len(series) + (baseline is not None), len(compared) * len(series))
    fig, (ax, gx) = plt.subplots(1, 2, figsize=(12.0, 4.8 if most_entries <= 4 else 4.8 + 0.25 * most_entries))
    n_slots = len(ops) * len(series)
    for s_index, (s_value, rows) in enumerate(series.items()):
        style, marker = SERIES_STYLES[s_index % len(SERIES_STYLES)]
        for o_index, op in enumerate(ops):
            color = colors[op]
            pts = []
            for row in rows:
                values = row.by_op.get(op, {})
                if not values:
                    continue
                mean, lo, hi = mean_ci(list(values.values()))
                pts.append((xpos(row, s_index * len(ops) + o_index, n_slots), mean, lo, hi))
            if not pts:
                continue
            name = _op_label(op) if s_value is None else f"{_op_label(op)}, {summary.axes[series_axis]} {_fmt(s_value)}"
            if not categorical:  # an ordered axis: join the points
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color=color, linewidth=1.0, alpha=0.7)
            for i, (x, mean, lo, hi) in enumerate(pts):
                lower, upper = _err(lo, mean, hi)
                ax.errorbar([x], [mean], yerr=[[lower], [upper]], fmt=marker, color=color, capsize=3,
                            markerfacecolor=color if lo is not None else "white", markersize=5,
                            label=name if i == 0 else None)
    if baseline is not None:
        ax.axhline(baseline, color="0.35", linestyle=(0, (2, 2)), linewidth=1.0,
                   label=f"linear baseline ({baseline:.1f}%)")
    ax.set_ylabel(f"{label} (%)")
    ax.set_title(f"{label} per op", fontsize=10)

    pooled_text_of = {}  # the sweep's headline numbers, on the panel they sum up
    for op in compared:
        pooled = summary.pooled_of(op)
        if pooled.n_pairs >= 2 and len(summary.rows) > 1:
            ci = f" [{pooled.lo:+.2f}, {pooled.hi:+.2f}]" if pooled.lo is not None else ""
            pooled_text_of[op] = f"{pooled.mean:+.2f}{ci}, wins {pooled.wins} of {pooled.n_pairs}"
    # several ops, no series axis: each legend entry carries its op's pooled numbers (a title would run to lines)
    pooled_in_legend = len(compared) > 1 and not any(v is not None for v in series)

    gap_labels = 0
    gap_slots = len(compared) * len(series)
    for s_index, (s_value, rows) in enumerate(series.items()):
        style, marker = SERIES_STYLES[s_index % len(SERIES_STYLES)]
        for o_index, op in enumerate(compared):
            color = GAP_COLOR if len(compared) == 1 else colors.get(op, GAP_COLOR)
            pts = [(xpos(r, s_index * len(compared) + o_index, gap_slots), r.gap_of(op)) for r in rows
                   if r.gap_of(op).mean is not None]
            if not pts:
                continue
            gap_labels += 1
            name = f"{op} − {ref}" if s_value is None else \
                f"{op} − {ref}, {summary.axes[series_axis]} {_fmt(s_value)}"
            if pooled_in_legend and op in pooled_text_of:
                name += f": pooled {pooled_text_of[op]}"
            if not categorical:
                gx.plot([p[0] for p in pts], [g.mean for _, g in pts], style, color=color, linewidth=1.0, alpha=0.7)
            for i, (x, g) in enumerate(pts):
                lower, upper = _err(g.lo, g.mean, g.hi)
                gx.errorbar([x], [g.mean], yerr=[[lower], [upper]], fmt=marker, color=color, capsize=3,
                            markerfacecolor=color if g.lo is not None else "white", markersize=5,
                            label=name if i == 0 else None)
    gx.axhline(0.0, color="black", linewidth=0.8)
    if summary.reference_hint:  # no run of the reference op: say why this panel is empty
        gx.text(0.5, 0.5, textwrap.fill(summary.reference_hint.split(":")[0] + ": pass a reference op "
                                        "(scripts/aggregate.py --reference OP)", 50),
                transform=gx.transAxes, ha="center", va="center", fontsize=9, color="0.3")
    pooled_text = ""
    if len(compared) == 1 and compared[0] in pooled_text_of:
        pooled = summary.pooled_of(compared[0])
        ci = f" [{pooled.lo:+.2f}, {pooled.hi:+.2f}]" if pooled.lo is not None else ""
        pooled_text = (f"\npooled over {pooled.n_pairs} pairs: {pooled.mean:+.2f}{ci} (95% CI); "
                       f"{compared[0]} wins {pooled.wins} of {pooled.n_pairs}")
    elif pooled_text_of and not pooled_in_legend:
        pooled_text = "\n" + textwrap.fill("pooled (95% CI): " + "; ".join(
            f"{op} {text}" for op, text in pooled_text_of.items()), 80)
    elif pooled_text_of:
        pooled_text = "\npooled over all pairs (95% CI) in the legend"
    what = f"{compared[0]} − {ref}" if len(compared) == 1 else f"op − {ref}"
    gx.set_ylabel(f"{what} (points)")
    gx.set_title(f"paired gap in {label[0].lower()}{label[1:]}, {what}{pooled_text}", fontsize=10)

    for a in (ax, gx):
        if categorical:
            a.set_xticks(range(len(summary.rows)))
            a.set_xticklabels(cat_labels, rotation=0 if len(summary.axes) <= 1 else 30,
                              ha="center" if len(summary.axes) <= 1 else "right", fontsize=8)
            a.set_xlim(-0.6, len(summary.rows) - 0.4)
            a.set_xlabel(AXIS_LABELS.get(summary.axes[0], summary.axes[0]) if len(summary.axes) == 1
                         else ("configuration" if summary.axes else ""))
        else:
            if log_x:
                a.set_xscale("log")
            ticks = sorted(set(xs_all))
            a.set_xticks(ticks)
            a.set_xticklabels([_fmt(t) for t in ticks])
            a.minorticks_off()
            a.set_xlabel(AXIS_LABELS.get(summary.axes[x_axis], summary.axes[x_axis]))
        a.grid(True, axis="y", alpha=0.3)
    bars = f"error bars: {LEVEL:.0%} t CI"
    for a, what_bars, entries in ((ax, "of the mean", len(ops) * len(series) + (baseline is not None)),
                                  (gx, "of the paired gap", gap_labels)):
        if not entries:
            continue
        where = (dict(loc="best") if entries <= 4 else  # more would cover the points: below the panel
                 dict(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1 if a is gx and pooled_in_legend else 2))
        a.legend(fontsize=8, framealpha=0.9, title=f"{bars} {what_bars}", title_fontsize=8, **where)

    fig.suptitle(textwrap.fill(f"{flag}: {summary.title}" if flag else summary.title, 110), fontsize=10,
                 color="#b00000" if flag else "black", fontweight="bold" if flag else "normal")
    fig.text(0.5, 0.01, textwrap.fill(
        f"Points: mean over seeds. Error bars: {LEVEL:.0%} t confidence interval of the mean (n − 1 df); the gap "
        f"is paired by seed. Hollow: one run or no spread, no interval.", 150), ha="center", va="bottom", fontsize=8)
    fig.tight_layout(rect=(0, 0.05, 1, 0.94))
    atomic_write(Path(path), lambda f: fig.savefig(f, format="png", dpi=130))
    plt.close(fig)
