"""How the gap changes along the sweep's one axis: between its two levels (no_act: gelu to none, the paper's Table 4
question) or per doubling of a numeric axis of three or more levels (fig1_width's widths, table3_depth's depths;
docs/protocol.md, amendment 4): the statistics (``trend_of``, ``gaps_by_level``; the figure and the docs' tables use
them too) and their sections of summary.md, empty for other sweeps."""
from __future__ import annotations

from typing import Any, Dict, List

from .format import format_gap, format_op, format_significant, format_value
from .stats import LEVEL, Gap, paired_diffs, paired_gap, trend
from .summary import Row, Summary


def two_level_lines(summary: Summary) -> List[str]:
    """With one axis of two levels (no_act: ``model.act`` gelu, none): each op's change from the first level to the
    second, paired by seed, and each compared op's gap change, (op − reference at the second level) − (op −
    reference at the first), paired by seed: the paper's Table 4 question, whether the reference loses more than
    the op when the level changes. Nothing for other sweeps."""
    if len(summary.axes) != 1 or len(summary.rows) != 2:
        return []
    first, second = summary.rows  # in the axis' sorted order
    axis, ref = summary.axes[0], summary.reference
    a, b = format_value(first.key[0]), format_value(second.key[0])

    def gaps(row: Row, op: Any) -> Dict[Any, float]:
        return paired_diffs(row.by_op.get(ref, {}), row.by_op.get(op, {}))

    lines = ["", f"## Change from {axis}={a} to {axis}={b}", "",
             f"| | change ({b} − {a}) [{LEVEL:.0%} CI] | n | significant |", "|---|---|---|---|"]
    for op in (ref, *summary.ops):
        g = paired_gap(first.by_op.get(op, {}), second.by_op.get(op, {}))
        lines.append(f"| {format_op(op)} | {format_gap(g)} | {g.n} | {format_significant(g)} |")
    for op in summary.ops:
        g = paired_gap(gaps(first, op), gaps(second, op))
        lines.append(f"| gap {format_op(op)} − {format_op(ref)} | {format_gap(g)} | {g.n} | {format_significant(g)} |")
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
        lines.append(f"| {format_op(op)} − {format_op(ref)} | {format_gap(g)} | {g.n} | {format_significant(g)} |")
    lines += ["", f"Per seed, the least-squares slope of its paired gaps op − {ref} on log2({axis}) (a seed counts "
              f"with gaps at 3 or more levels); their mean and {LEVEL:.0%} t interval over seeds. Negative: the gap "
              f"shrinks as {axis} grows."]
    return lines

