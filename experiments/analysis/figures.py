"""``star_vs_sum.png``: accuracy per op and the paired gaps of a ``Summary``, each panel saying what its points and bars
are and how many runs stand behind them.

One compared op (star − sum): two panels. Left, every op's mean over seeds with its 95% t interval, the reference op
drawn last so that it is never hidden under another; the linear baseline as a reference line, in a strip of its own
under the panel when it lies far below the runs (so the accuracy axis is spent on the runs). Right, the paired gap
with its 95% t interval and a zero line; with a trend statistic (one numeric axis of three or more levels,
docs/protocol.md amendment 4) also the fitted trend, the mean of the seeds' own lines with its 95% band, and its
slope per doubling in the legend. A numeric axis is drawn to scale, on a log2 axis when the trend is per doubling
(or it spans 10x or more), its points joined; categories are not joined. With two axes, one numeric, the other
becomes one series per value (the budget curve: epochs on x, one line per width).

Several compared ops (the op zoo): a forest plot. One line per op, read across three panels: every op's accuracy
per row (width), each op's gap against the reference per row, and its pooled gap with both the 95% interval and the
Bonferroni interval for that many comparisons, the number of pairs and wins written beside it.

Every axis is clipped to the runs' own values (an interval that runs past them, as with two seeds, is cut at the
edge and marked with an arrow, and the figure says so). Pairs whose two runs ran on two CPU models, and rows that ran
on different ones (``machines``), are marked on the figure and named under it.
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..records.files import atomic_write
from .format import format_value
from .levels import gaps_by_level, has_trend, trend_of
from .machines import MachineReport, warnings as machine_warnings
from .pooled import bonferroni
from .stats import LEVEL, mean_ci, paired_diffs, trend_band
from .summary import BASE_OP, TEST_OP, Row, Summary, row_label

OP_COLORS = {BASE_OP: "#1f77b4", TEST_OP: "#ff7f0e"}
GAP_COLOR = "#d62728"   # the gap of a sweep with one compared op
OTHER_COLORS = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
SERIES_STYLES = (("-", "o"), ("--", "s"), (":", "D"), ("-.", "^"))
ROW_STYLES = (("o", "#4c72b0"), ("s", "#dd8452"), ("D", "#55a868"), ("^", "#c44e52"), ("v", "#8172b3"),
              ("P", "#937860"), ("X", "#da8bc3"))
REFERENCE_MARKER = "s"
# Preferred x axis when a sweep has two axes and both are numeric: the budget first (the budget curve).
X_PRIORITY = ("trainer.epochs", "data.train_size", "width", "depth")
AXIS_LABELS = {"width": "width (channels)", "depth": "depth (blocks)", "trainer.epochs": "training budget (epochs)",
               "data.train_size": "training images", "model.act": "activation", "model.variant": "variant"}
DATA_LABELS = {"fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
               "imagenet": "ImageNet", "fashion_det": "Fashion-MNIST detection"}
CROSS_MARK = "†"     # a row with pairs on two CPU models
PAD = 0.08           # of the data's span, around the clipped axis


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
    """One colour per op, the same in every panel (sum and star keep theirs)."""
    colors: Dict[Any, str] = {}
    spare = iter(c for c in OTHER_COLORS)
    for op in ops_of(summary):
        colors[op] = OP_COLORS.get(op) if isinstance(op, str) and op in OP_COLORS else next(spare, "0.4")
    return colors


def _op_label(op: Any) -> str:
    return f"[{','.join(map(str, op))}]" if isinstance(op, (list, tuple)) else str(op)


def figure_title(summary: Summary) -> str:
    """The summary's title with the data set's name as people write it, not its config name; a caveat the figure
    must not be seen without (``Summary.caveat``: under-trained runs) goes first."""
    title = summary.title
    for name, label in DATA_LABELS.items():
        title = title.replace(f" on {name} ", f" on {label} ").replace(f"/{name} ", f"/{label} ")
    caveat = summary.caveat
    return f"{caveat.flag}: {title}" if caveat else title


def _reference_hint(ax, summary: Summary) -> None:
    """No run of the reference op: say on the (empty) gap panel why, and how to name one."""
    if summary.reference_hint:
        ax.text(0.5, 0.5, textwrap.fill(summary.reference_hint.split(":")[0] + ": pass a reference op "
                                        "(scripts/aggregate.py --reference OP)", 50),
                transform=ax.transAxes, ha="center", va="center", fontsize=9, color="0.3")


def _suptitle(fig, summary: Summary, width: int) -> None:
    flagged = summary.caveat is not None
    fig.suptitle(textwrap.fill(figure_title(summary), width), fontsize=10, color="#b00000" if flagged else "black",
                 fontweight="bold" if flagged else "normal")


def dodge(x: float, shift: float, log_x: bool, span: float, ratio: float = 1.04) -> float:
    """``x`` moved ``shift`` slots aside (a factor on a log axis, a fraction of ``span`` on a linear one), so
    that points of different ops at one x do not hide each other."""
    return x * ratio ** shift if log_x else x + 0.012 * shift * span


def _err(lo: Optional[float], mean: float, hi: Optional[float]) -> Tuple[float, float]:
    return (0.0, 0.0) if lo is None else (mean - lo, hi - mean)


def n_text(counts: Sequence[int]) -> str:
    """"n = 6" or "n = 2–6" for the runs (pairs) behind a series' points."""
    counts = sorted(set(counts))
    if not counts:
        return "n = 0"
    return f"n = {counts[0]}" if len(counts) == 1 else f"n = {counts[0]}–{counts[-1]}"


class Clip:
    """An axis range spent on the data: the runs' own values (individual runs, individual paired gaps) and the
    points, padded, optionally with fixed values kept in view (the zero of a gap axis) and hard bounds (0–100% for
    accuracy). ``bar`` clips an interval to it; ``clipped`` says whether any was cut."""

    def __init__(self, values: Sequence[float], keep: Sequence[float] = (),
                 bounds: Tuple[float, float] = (-1e18, 1e18)):
        span_values = [v for v in [*values, *keep] if v is not None]
        lo, hi = (min(span_values), max(span_values)) if span_values else (0.0, 1.0)
        pad = PAD * ((hi - lo) or max(abs(hi), 1.0))
        self.lo, self.hi = max(bounds[0], lo - pad), min(bounds[1], hi + pad)
        self.clipped = False

    def bar(self, mean: float, lo: Optional[float], hi: Optional[float]) -> Tuple[float, float, bool, bool]:
        """(lower, upper) error lengths within the range, and whether the low and the high end were cut."""
        if lo is None:
            return 0.0, 0.0, False, False
        cut_lo, cut_hi = lo < self.lo, hi > self.hi
        self.clipped |= cut_lo or cut_hi
        return mean - max(lo, self.lo), min(hi, self.hi) - mean, cut_lo, cut_hi

    def apply(self, ax, vertical: bool = True) -> None:
        (ax.set_ylim if vertical else ax.set_xlim)(self.lo, self.hi)


def error_bar(ax, x: float, mean: float, lo, hi, clip: Clip, vertical: bool = True, **style) -> Any:
    """One point with its interval, cut to ``clip`` (an arrow at a cut end)."""
    lower, upper, cut_lo, cut_hi = clip.bar(mean, lo, hi)
    color = style.get("color")
    if vertical:
        handle = ax.errorbar([x], [mean], yerr=[[lower], [upper]], **style)
        for cut, end, marker in ((cut_lo, mean - lower, "v"), (cut_hi, mean + upper, "^")):
            if cut:
                ax.plot([x], [end], marker=marker, color=color, markersize=6, zorder=style.get("zorder", 2))
    else:
        handle = ax.errorbar([mean], [x], xerr=[[lower], [upper]], **style)
        for cut, end, marker in ((cut_lo, mean - lower, "<"), (cut_hi, mean + upper, ">")):
            if cut:
                ax.plot([end], [x], marker=marker, color=color, markersize=6, zorder=style.get("zorder", 2))
    return handle


def _run_values(summary: Summary) -> List[float]:
    return [v for r in summary.rows for seeds in r.by_op.values() for v in seeds.values()]


def _gap_values(summary: Summary, ops: Sequence[Any]) -> List[float]:
    return [g for r in summary.rows for op in ops
            for g in paired_diffs(r.by_op.get(summary.reference, {}), r.by_op.get(op, {})).values()]


def _footnote(summary: Summary, clipped: bool, hollow: bool, machines: Optional[MachineReport],
              extra: Sequence[str] = (), marked: bool = False) -> str:
    parts = [f"Points: mean over seeds (n = runs per point, in the legend). Error bars: {LEVEL:.0%} t confidence "
             "interval of the mean (n − 1 df); gaps are paired by seed."]
    parts += list(extra)
    if hollow:
        parts.append("Hollow: one run or no spread, no interval.")
    if clipped:
        parts.append("Axes show the runs' own range: an interval running past it is cut at the edge (arrow).")
    if machines is not None:
        found = machine_warnings(machines)
        if found:
            parts.append(f"{CROSS_MARK + ' ' if marked else ''}CPU models: " + " ".join(found))
    return " ".join(parts)


def _note(fig, note: str, width: int) -> None:
    """The footnote under the panels, with the room it needs kept free by the layout."""
    text = textwrap.fill(note, width)
    lines = text.count("\n") + 1
    height = fig.get_size_inches()[1]
    fig.text(0.5, 0.005, text, ha="center", va="bottom", fontsize=7.5)
    bottom = (0.1 + 0.135 * lines) / height
    fig.get_layout_engine().set(rect=(0, bottom, 1, 1 - bottom))  # (left, bottom, width, height)


def plot(summary: Summary, path: Path, machines: Optional[MachineReport] = None) -> None:
    """Write the figure of ``summary`` to ``path`` (PNG); ``machines``: its runs' CPU models, for the marks."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if summary.multi and len(summary.axes) <= 1:
        fig = _forest(summary, machines, plt)
    else:
        fig = _panels(summary, machines, plt)
    atomic_write(Path(path), lambda f: fig.savefig(f, format="png", dpi=130))
    plt.close(fig)


def _panels(summary: Summary, machines: Optional[MachineReport], plt) -> Any:
    """Accuracy and gap side by side (one compared op, or several with a series axis)."""
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
    trended = has_trend(summary)
    log_x = bool(xs_all) and min(xs_all) > 0 and (max(xs_all) / min(xs_all) >= 10 or trended)
    ops = ops_of(summary)
    colors = op_colors(summary)
    ref, compared = summary.reference, summary.ops

    def xpos(row: Row, slot: int, slots: int) -> float:
        """Dodged position so that error bars of different ops/series do not overlap."""
        shift = (slot - (slots - 1) / 2)
        if categorical:
            return position[id(row)] + 0.12 * shift
        return dodge(float(row.key[x_axis]), shift, log_x, max(xs_all) - min(xs_all) or 1.0)

    runs = _run_values(summary)
    acc_clip = Clip(runs, bounds=(0.0, 100.0) if summary.metric in ("top1", "top5", "best_top1") else (-1e18, 1e18))
    strip = baseline is not None and runs and baseline < acc_clip.lo
    if baseline is not None and not strip:
        acc_clip = Clip(runs, keep=[baseline], bounds=(acc_clip.lo - 1e9, acc_clip.hi + 1e9))
    most_entries = max(len(ops) * len(series) + (baseline is not None), len(compared) * len(series) + trended)
    fig = plt.figure(figsize=(12.0, 5.2 if most_entries <= 4 else 5.2 + 0.25 * most_entries), layout="constrained")
    grid = fig.add_gridspec(2, 2, height_ratios=[7, 1] if strip else [1, 0.0001])
    ax = fig.add_subplot(grid[0, 0] if strip else grid[:, 0])
    bx = fig.add_subplot(grid[1, 0], sharex=ax) if strip else None
    gx = fig.add_subplot(grid[:, 1])
    hollow = False
    n_slots = len(ops) * len(series)
    draw_order = [op for op in ops if op != ref] + [op for op in ops if op == ref]   # the reference on top
    for s_index, (s_value, rows) in enumerate(series.items()):
        style, marker = SERIES_STYLES[s_index % len(SERIES_STYLES)]
        for op in draw_order:
            o_index = ops.index(op)
            color = colors[op]
            on_top = 4 if op == ref else 3
            pts, counts = [], []
            for row in rows:
                values = row.by_op.get(op, {})
                if not values:
                    continue
                mean, lo, hi = mean_ci(list(values.values()))
                counts.append(len(values))
                pts.append((xpos(row, s_index * len(ops) + o_index, n_slots), mean, lo, hi))
            if not pts:
                continue
            name = _op_label(op) if s_value is None else \
                f"{_op_label(op)}, {summary.axes[series_axis]} {format_value(s_value)}"
            name += f" ({n_text(counts)})"
            if not categorical:  # an ordered axis: join the points
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color=color, linewidth=1.0, alpha=0.7,
                        zorder=on_top)
            mark = REFERENCE_MARKER if op == ref and series_axis is None else marker
            for i, (x, mean, lo, hi) in enumerate(pts):
                hollow |= lo is None
                error_bar(ax, x, mean, lo, hi, acc_clip, fmt=mark, color=color, capsize=3, zorder=on_top,
                     markerfacecolor=color if lo is not None else "white", markersize=5,
                     label=name if i == 0 else None)
    acc_clip.apply(ax)
    if baseline is not None:
        target = bx if strip else ax
        target.axhline(baseline, color="0.35", linestyle=(0, (2, 2)), linewidth=1.0,
                       label=f"linear baseline ({baseline:.2f}%)")
        if strip:
            half = 0.25 * (acc_clip.hi - acc_clip.lo) / 7
            bx.set_ylim(baseline - half, baseline + half)
            bx.set_yticks([baseline])
            bx.set_yticklabels([f"{baseline:.2f}"])
            bx.grid(False)
            ax.spines["bottom"].set_visible(False)
            bx.spines["top"].set_visible(False)
            ax.tick_params(axis="x", which="both", bottom=False, labelbottom=False)
            for a, y in ((ax, 0.0), (bx, 1.0)):  # the axis break
                a.plot([-0.012, 0.012], [y - 0.012 * (7 if a is bx else 1), y + 0.012 * (7 if a is bx else 1)],
                       transform=a.transAxes, color="k", clip_on=False, linewidth=0.8)
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

    gap_clip = Clip(_gap_values(summary, compared), keep=[0.0])
    bands = []
    if trended:
        levels = sorted(xs_all)
        for op in compared:
            g = trend_of(summary, op)
            if g.mean is None:
                continue
            import numpy as np
            grid_x = list(np.geomspace(min(levels), max(levels), 40))
            band = trend_band(gaps_by_level(summary, op), grid_x)
            bands.append((op, g, grid_x, band))
            gap_clip = Clip([*_gap_values(summary, compared), *(m for m, _, _ in band)], keep=[0.0])
    flagged = machines.flagged(compared[0]) if machines is not None and len(compared) == 1 else {}
    gap_labels = 0
    gap_slots = len(compared) * len(series)
    for s_index, (s_value, rows) in enumerate(series.items()):
        style, marker = SERIES_STYLES[s_index % len(SERIES_STYLES)]
        for o_index, op in enumerate(compared):
            color = GAP_COLOR if len(compared) == 1 else colors.get(op, GAP_COLOR)
            pts = [(xpos(r, s_index * len(compared) + o_index, gap_slots), r.gap_of(op), r) for r in rows
                   if r.gap_of(op).mean is not None]
            if not pts:
                continue
            gap_labels += 1
            name = f"{op} − {ref}" if s_value is None else \
                f"{op} − {ref}, {summary.axes[series_axis]} {format_value(s_value)}"
            name += f" ({n_text([g.n for _, g, _ in pts])} pairs)"
            if pooled_in_legend and op in pooled_text_of:
                name += f": pooled {pooled_text_of[op]}"
            if not categorical:
                gx.plot([p[0] for p in pts], [g.mean for _, g, _ in pts], style, color=color, linewidth=1.0,
                        alpha=0.7)
            for i, (x, g, row) in enumerate(pts):
                hollow |= g.lo is None
                error_bar(gx, x, g.mean, g.lo, g.hi, gap_clip, fmt=marker, color=color, capsize=3, zorder=3,
                     markerfacecolor=color if g.lo is not None else "white", markersize=5,
                     label=name if i == 0 else None)
                if row.key in flagged:
                    top = min(g.hi if g.hi is not None else g.mean, gap_clip.hi)
                    gx.annotate(CROSS_MARK, (x, top), xytext=(0, 3), textcoords="offset points", ha="center",
                                va="bottom", fontsize=11, color=color)
    for op, g, grid_x, band in bands:
        color = GAP_COLOR if len(compared) == 1 else colors.get(op, GAP_COLOR)
        ci = f" [{g.lo:+.2f}, {g.hi:+.2f}]" if g.lo is not None else ""  # one seed, or no spread: no interval
        gx.plot(grid_x, [m for m, _, _ in band], "--", color="0.25", linewidth=1.2, zorder=2,
                label=f"trend {op} − {ref}: {g.mean:+.2f}{ci} per doubling of {summary.axes[0]} ({g.n} seeds)")
        if all(lo is not None for _, lo, _ in band):
            gx.fill_between(grid_x, [lo for _, lo, _ in band], [hi for _, _, hi in band], color="0.5", alpha=0.15,
                            linewidth=0, zorder=1, label=f"{LEVEL:.0%} band of the fitted trend")
    gap_clip.apply(gx)
    gx.axhline(0.0, color="black", linewidth=0.8)
    _reference_hint(gx, summary)
    pooled_text = ""
    if len(compared) == 1 and compared[0] in pooled_text_of:
        pooled = summary.pooled_of(compared[0])
        ci = f" [{pooled.lo:+.2f}, {pooled.hi:+.2f}]" if pooled.lo is not None else ""
        pooled_text = (f"\npooled over {pooled.n_pairs} pairs: {pooled.mean:+.2f}{ci} ({LEVEL:.0%} CI); "
                       f"{compared[0]} wins {pooled.wins} of {pooled.n_pairs}")
    elif pooled_text_of and not pooled_in_legend:
        pooled_text = "\n" + textwrap.fill(f"pooled ({LEVEL:.0%} CI): " + "; ".join(
            f"{op} {text}" for op, text in pooled_text_of.items()), 80)
    elif pooled_text_of:
        pooled_text = f"\npooled over all pairs ({LEVEL:.0%} CI) in the legend"
    what = f"{compared[0]} − {ref}" if len(compared) == 1 else f"op − {ref}"
    gx.set_ylabel(f"{what} (points)")
    gx.set_title(f"paired gap in {label[0].lower()}{label[1:]}, {what}{pooled_text}", fontsize=10)

    for a in (bx if strip else ax, gx):
        if categorical:
            a.set_xticks(range(len(summary.rows)))
            a.set_xticklabels(cat_labels, rotation=0 if len(summary.axes) <= 1 else 30,
                              ha="center" if len(summary.axes) <= 1 else "right", fontsize=8)
            a.set_xlim(-0.6, len(summary.rows) - 0.4)
            a.set_xlabel(AXIS_LABELS.get(summary.axes[0], summary.axes[0]) if len(summary.axes) == 1
                         else ("configuration" if summary.axes else ""))
        else:
            if log_x:
                a.set_xscale("log", base=2)
            ticks = sorted(set(xs_all))
            a.set_xticks(ticks)
            a.set_xticklabels([format_value(t) for t in ticks])
            a.minorticks_off()
            axis_name = AXIS_LABELS.get(summary.axes[x_axis], summary.axes[x_axis])
            a.set_xlabel(axis_name + (" (log scale)" if log_x else ""))
    for a in (ax, gx):
        a.grid(True, axis="y", alpha=0.3)
    bars = f"error bars: {LEVEL:.0%} t CI"
    handles, labels = ax.get_legend_handles_labels()
    if strip:
        more_h, more_l = bx.get_legend_handles_labels()
        handles, labels = handles + more_h, labels + more_l
    for a, what_bars, (h, l) in ((ax, "of the mean", (handles, labels)),
                                 (gx, "of the paired gap", gx.get_legend_handles_labels())):
        if not l:
            continue
        where = (dict(loc="best") if len(l) <= 4 else  # more would cover the points: below the panel
                 dict(loc="upper center", bbox_to_anchor=(0.5, -0.16 if a is gx or not strip else -1.6),
                      ncol=1 if a is gx and (pooled_in_legend or bands) else 2))
        a.legend(h, l, fontsize=8, framealpha=0.9, title=f"{bars} {what_bars}", title_fontsize=8, **where)

    _suptitle(fig, summary, 110)
    extra = ["The accuracy axis is broken: the linear baseline lies below the runs."] if strip else []
    note = _footnote(summary, acc_clip.clipped or gap_clip.clipped, hollow, machines, extra, marked=bool(flagged))
    _note(fig, note, 170)
    return fig


def _forest(summary: Summary, machines: Optional[MachineReport], plt) -> Any:
    """Several ops against the reference: accuracy per row, gap per row, pooled gap with 95% and Bonferroni
    intervals, one line per op (ordered by pooled gap, largest on top; the reference at the bottom)."""
    label = summary.metric_label or summary.metric
    ref, compared = summary.reference, summary.ops
    results = {op: summary.pooled_of(op) for op in compared}
    order = sorted(compared, key=lambda op: (results[op].mean is None, -(results[op].mean or 0.0)))
    lines_y = {op: len(order) - i for i, op in enumerate(order)}
    lines_y[ref] = 0
    rows = summary.rows
    k = len(compared)
    bonf_level = 1 - (1 - LEVEL) / k
    height = 2.6 + 0.42 * (len(order) + 1)
    fig, (ax, rx, fx) = plt.subplots(1, 3, figsize=(17.0, max(height, 5.2)), sharey=True, layout="constrained",
                                     gridspec_kw=dict(width_ratios=[1.0, 1.0, 1.0]))
    step = 0.6 / max(len(rows), 1)

    def offset(i: int) -> float:
        return (i - (len(rows) - 1) / 2) * step

    runs = _run_values(summary)
    acc_clip = Clip(runs, bounds=(0.0, 100.0))
    gap_clip = Clip(_gap_values(summary, compared), keep=[0.0])
    hollow = False
    for i, row in enumerate(rows):
        marker, color = ROW_STYLES[i % len(ROW_STYLES)]
        name = row_label(summary, row)
        name = f"{summary.axes[0]} {name}" if len(summary.axes) == 1 else name
        counts = [len(row.by_op.get(op, {})) for op in [ref, *compared] if row.by_op.get(op)]
        for op in [ref, *order]:
            values = list(row.by_op.get(op, {}).values())
            if not values:
                continue
            mean, lo, hi = mean_ci(values)
            hollow |= lo is None
            error_bar(ax, lines_y[op] + offset(i), mean, lo, hi, acc_clip, vertical=False, fmt=marker, color=color,
                 capsize=2, markersize=5, markerfacecolor=color if lo is not None else "white",
                 label=f"{name} ({n_text(counts)})" if op == ref else None)
        for op in order:
            g = row.gap_of(op)
            if g.mean is None:
                continue
            hollow |= g.lo is None
            error_bar(rx, lines_y[op] + offset(i), g.mean, g.lo, g.hi, gap_clip, vertical=False, fmt=marker,
                 color=color, capsize=2, markersize=5, markerfacecolor=color if g.lo is not None else "white",
                 label=f"{name} ({n_text([row.gap_of(o).n for o in order])} pairs)" if op == order[0] else None)
    acc_clip.apply(ax, vertical=False)
    gap_clip.apply(rx, vertical=False)

    forest_values = [0.0]
    intervals = {}
    for op in order:
        p = results[op]
        b_lo, b_hi = bonferroni(p, k)
        intervals[op] = (p, b_lo, b_hi)
        forest_values += [v for v in (p.lo, p.hi, b_lo, b_hi) if v is not None]
    fclip = Clip([v for v in forest_values if v is not None])
    for op in order:
        p, b_lo, b_hi = intervals[op]
        y = lines_y[op]
        if p.mean is None:
            continue
        if b_lo is not None:
            fx.errorbar([p.mean], [y], xerr=[[p.mean - b_lo], [b_hi - p.mean]], fmt="none", color="0.2",
                        capsize=4, linewidth=1.0, label=f"{bonf_level:.2%} CI (Bonferroni, {k} comparisons)"
                        if op == order[0] else None)
        if p.lo is not None:
            fx.errorbar([p.mean], [y], xerr=[[p.mean - p.lo], [p.hi - p.mean]], fmt="none", color="0.2",
                        capsize=0, linewidth=4.0, label=f"{LEVEL:.0%} stratified t CI" if op == order[0] else None)
        significant = b_lo is not None and (b_lo > 0 or b_hi < 0)
        fx.plot([p.mean], [y], "D", color="0.1", markersize=6, markerfacecolor="0.1" if significant else "white",
                zorder=4)
        total = machines.total(op) if machines is not None else None
        cross = f"; {CROSS_MARK} {total.two} of {total.n} on two CPUs" if total is not None and total.two else ""
        text = f"{p.mean:+.2f}" + (f" [{p.lo:+.2f}, {p.hi:+.2f}]" if p.lo is not None else "")
        fx.annotate(f"{text}  n = {p.n_pairs}, wins {p.wins}{cross}", (1.01, y), xycoords=("axes fraction", "data"),
                    va="center", ha="left", fontsize=7.5)
    fclip.apply(fx, vertical=False)
    for a in (ax, rx, fx):
        a.grid(True, axis="x", alpha=0.3)
        a.set_ylim(-0.7, len(order) + 0.7)
    for a in (rx, fx):
        a.axvline(0.0, color="black", linewidth=0.8)
        a.axhspan(-0.5, 0.5, color="0.92", zorder=0)  # the reference's line: no gap
    ax.set_yticks([lines_y[op] for op in [*order, ref]])
    ax.set_yticklabels([_op_label(op) for op in order] + [f"{_op_label(ref)} (reference)"])
    ax.set_xlabel(f"{label} (%)")
    ax.set_title(f"{label} per op", fontsize=10)
    rx.set_xlabel(f"op − {ref} (points)")
    for panel in (rx, fx):
        _reference_hint(panel, summary)
    rx.set_title(f"paired gap op − {ref} per {summary.axes[0] if summary.axes else 'row'}", fontsize=10)
    fx.set_xlabel(f"op − {ref} (points), pooled")
    fx.set_title(f"pooled gap op − {ref} over all pairs\nfilled: Bonferroni interval excludes 0", fontsize=10)
    ax.legend(fontsize=8, framealpha=0.9, title=f"error bars: {LEVEL:.0%} t CI of the mean", title_fontsize=8,
              loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=min(len(rows), 3))
    rx.legend(fontsize=8, framealpha=0.9, title=f"error bars: {LEVEL:.0%} t CI of the paired gap",
              title_fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=min(len(rows), 3))
    fx.legend(fontsize=8, framealpha=0.9, title="pooled gap (diamond) and its intervals", title_fontsize=8,
              loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=1)
    _suptitle(fig, summary, 130)
    extra = [f"Pooled: every ({', '.join(summary.axes) or 'row'}, seed) pair counts once; stratified t interval "
             f"(docs/protocol.md); the thin bars are {bonf_level:.2%} intervals, Bonferroni for the {k} comparisons "
             f"with {ref}. Per-{summary.axes[0] if summary.axes else 'row'} gaps are descriptive."]
    note = _footnote(summary, acc_clip.clipped or gap_clip.clipped, hollow, machines, extra)
    _note(fig, note, 200)
    return fig
