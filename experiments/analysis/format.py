"""How every output spells and orders what it shows: a knob's value, mean ± std over seeds, a gap with its interval,
its significance, an op (a per-stage op list as typed). summary.md, summary.csv, the figure, the W&B runs and tables,
tuning.md and the docs' generated tables all use these, so a value reads the same wherever it appears."""
from __future__ import annotations

from typing import Any, Sequence, Tuple

from .stats import Gap, mean_std


def format_value(value: Any) -> str:
    """A knob's value as a table cell or label: "" for None, a list as [a,b]."""
    if value is None:
        return ""
    if isinstance(value, tuple):
        return "[" + ",".join(map(str, value)) + "]"
    return str(value)


def format_mean_std(xs: Sequence[float], digits: int = 2) -> str:
    """"81.20 ± 0.35": mean and sample std over seeds ("81.20" for one value, "–" for none)."""
    mean, std = mean_std(xs)
    if mean is None:
        return "–"
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def format_gap(gap: Gap) -> str:
    """"+0.40 [+0.12, +0.68]": a gap's mean and t interval ("+0.40" without one, "–" without a pair)."""
    if gap.mean is None:
        return "–"
    if gap.lo is None:
        return f"{gap.mean:+.2f}"
    return f"{gap.mean:+.2f} [{gap.lo:+.2f}, {gap.hi:+.2f}]"


def format_significant(gap: Gap) -> str:
    """yes, no, or n/a with the reason (too few pairs, no spread)."""
    if gap.significant is None:
        return f"n/a ({gap.reason})" if gap.mean is not None else "n/a"
    return "yes" if gap.significant else "no"


def format_op(op: Any) -> str:
    """A per-stage op list as the user typed it: [sum,sum,star,star]."""
    return f"[{','.join(map(str, op))}]" if isinstance(op, (list, tuple)) else str(op)


def value_order(value: Any) -> Tuple[int, Any]:
    """The order of a knob's values in every table: None, then numbers by size (1/2/4/16, not 1/16/2/4), then text."""
    if value is None:
        return (0, 0)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, value)
    return (2, str(value))


def as_key(value: Any) -> Any:
    """A value that can be grouped on: a list as a tuple."""
    return tuple(value) if isinstance(value, list) else value
