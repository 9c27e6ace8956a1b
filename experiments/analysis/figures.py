"""``star_vs_sum.png``: the paper's Fig. 1 (right) style bars for a ``Summary``."""
from __future__ import annotations

import math
import textwrap
from pathlib import Path

from .stats import LEVEL, mean_std
from .tables import BASE_OP, TEST_OP, Summary, row_label

METRIC_LABELS = {"top1": "Top-1 accuracy", "top5": "Top-5 accuracy", "best_top1": "Best-epoch top-1 accuracy",
                 "map50_95": "mAP50-95", "map50": "mAP50"}


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
