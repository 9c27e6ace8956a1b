"""Native W&B charts of a sweep's gaps (each compared op − the reference: star − sum) over its swept axis,
logged by its summary run
(``wandb_runs.log_to_wandb``) so that the comparison shows in the dashboard without a report. The
report (``wandb_report``) shows them again from the same keys.

- ``summary/gap_chart``: ``wandb.plot.bar``, one bar per row (the gap; per (row, op) with several compared
  ops, labelled "row · op"); its table ``summary/gap_chart_table`` also holds the CI bounds and the number of
  paired seeds;
- with one numeric axis (width, depth, ...), line series over it: ``summary/gap_ci_chart`` (each gap and its
  CI bounds) and ``summary/by_op_chart`` (each op's mean over seeds).
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from .stats import LEVEL, mean_std
from .summary import Summary, row_label

GAP_CHART, GAP_CI_CHART, BY_OP_CHART = "summary/gap_chart", "summary/gap_ci_chart", "summary/by_op_chart"
GAP_COLUMNS = ["row", "gap", "gap_lo", "gap_hi", "seeds"]


def table_key(chart: str) -> str:
    """Where W&B logs a chart's data table (a summary key of the run)."""
    return chart + "_table"


def numeric_axis(summary: Summary) -> Optional[str]:
    """The swept axis when there is exactly one and its values are numbers, else None."""
    if len(summary.axes) != 1:
        return None
    ok = all(isinstance(r.key[0], (int, float)) and not isinstance(r.key[0], bool) for r in summary.rows)
    return summary.axes[0] if ok and summary.rows else None


def gap_charts(summary: Summary) -> Dict[str, Any]:
    """{key: wandb CustomChart} for ``run.log``."""
    import wandb
    metric = summary.metric
    by = " × ".join(summary.axes) or "all runs"
    base, multi = summary.reference, summary.multi
    what = f"{summary.ops[0]} − {base}" if not multi else f"op − {base}"
    data = [[row_label(summary, r) + (f" · {op}" if multi else ""), g.mean, g.lo, g.hi, g.n]
            for r in summary.rows for op in summary.ops for g in [r.gap_of(op)] if g.mean is not None]
    table = wandb.Table(columns=GAP_COLUMNS, data=data)
    charts: Dict[str, Any] = {GAP_CHART: wandb.plot.bar(table, "row", "gap", title=f"{what} gap in {metric} by {by}")}
    axis = numeric_axis(summary)
    if axis is None:
        return charts
    xs, ys, keys = [], [], []
    for op in summary.ops:
        ci = [(r.key[0], r.gap_of(op)) for r in summary.rows if r.gap_of(op).lo is not None]
        if ci:
            prefix = f"{op} − {base} " if multi else ""
            xs += [[x for x, _ in ci]] * 3
            ys += [[g.mean for _, g in ci], [g.lo for _, g in ci], [g.hi for _, g in ci]]
            keys += [f"{prefix}gap", f"{prefix}{LEVEL:.0%} CI low", f"{prefix}{LEVEL:.0%} CI high"]
    if keys:
        charts[GAP_CI_CHART] = wandb.plot.line_series(
            xs=xs[0] if not multi else xs, ys=ys, keys=keys, xname=axis,
            title=f"{what} gap in {metric} over {axis}, with its {LEVEL:.0%} CI")
    shown = [base, *summary.ops]
    means = {op: [(r.key[0], mean_std(r.values(op))[0]) for r in summary.rows if r.values(op)] for op in shown}
    if all(means.values()):
        charts[BY_OP_CHART] = wandb.plot.line_series(
            xs=[[x for x, _ in means[op]] for op in shown],
            ys=[[m for _, m in means[op]] for op in shown],
            keys=[f"{op} mean" for op in shown], xname=axis,
            title=f"{metric} over {axis}: {summary.comparison} (mean over seeds)")
    return charts
