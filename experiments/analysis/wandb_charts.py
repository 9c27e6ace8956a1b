"""Native W&B charts of a sweep's star − sum gap over its swept axis, logged by its summary run
(``wandb_runs.log_to_wandb``) so that the comparison shows in the dashboard without a report. The
report (``wandb_report``) shows them again from the same keys.

- ``summary/gap_chart``: ``wandb.plot.bar``, one bar per row (the gap); its table ``summary/gap_chart_table``
  also holds the CI bounds and the number of paired seeds;
- with one numeric axis (width, depth, ...), line series over it: ``summary/gap_ci_chart`` (the gap and its
  CI bounds) and ``summary/by_op_chart`` (each op's mean over seeds).
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from .stats import LEVEL, mean_std
from .tables import BASE_OP, TEST_OP, Summary, row_label

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
    rows = [r for r in summary.rows if r.gap.mean is not None]
    table = wandb.Table(columns=GAP_COLUMNS,
                        data=[[row_label(summary, r), r.gap.mean, r.gap.lo, r.gap.hi, r.gap.n] for r in rows])
    charts: Dict[str, Any] = {GAP_CHART: wandb.plot.bar(table, "row", "gap",
                                                        title=f"{TEST_OP} − {BASE_OP} gap in {metric} by {by}")}
    axis = numeric_axis(summary)
    if axis is None:
        return charts
    ci = [r for r in rows if r.gap.lo is not None]
    if ci:
        charts[GAP_CI_CHART] = wandb.plot.line_series(
            xs=[r.key[0] for r in ci], ys=[[r.gap.mean for r in ci], [r.gap.lo for r in ci], [r.gap.hi for r in ci]],
            keys=["gap", f"{LEVEL:.0%} CI low", f"{LEVEL:.0%} CI high"], xname=axis,
            title=f"{TEST_OP} − {BASE_OP} gap in {metric} over {axis}, with its {LEVEL:.0%} CI")
    means = {op: [(r.key[0], mean_std(r.values(op))[0]) for r in summary.rows if r.values(op)]
             for op in (BASE_OP, TEST_OP)}
    if all(means.values()):
        charts[BY_OP_CHART] = wandb.plot.line_series(
            xs=[[x for x, _ in means[op]] for op in (BASE_OP, TEST_OP)],
            ys=[[m for _, m in means[op]] for op in (BASE_OP, TEST_OP)],
            keys=[f"{op} mean" for op in (BASE_OP, TEST_OP)], xname=axis,
            title=f"{metric} over {axis}: {TEST_OP} vs {BASE_OP} (mean over seeds)")
    return charts
