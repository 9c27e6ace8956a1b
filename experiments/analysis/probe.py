"""The implicit-dimension probe of a trained DemoNet (``scripts/probe_dimension.py`` loads the runs).

Per block, over a fixed set of images (the first ``rank_images`` evaluation images):

- the fused hidden features ``op(act(x1), x2)``, the input of the block's Linear ``g`` (a forward pre-hook
  on ``g``): every token of every image is one vector of the hidden width 3·width; their column means
  removed, ``rank.rank_stats`` gives the effective rank, the singular values to 90% / 99% of the energy and
  the numerical rank;
- the block's output, mean-pooled over the tokens (a forward hook on the block): a linear probe
  (``baseline.fit_linear``, softmax regression, L2 1e-2, L-BFGS from zero) fitted on the pooled features of
  the first ``probe_train`` training images and scored on the first ``probe_test`` evaluation images; the
  features are standardised with the fitting images' mean and std first, so the L2 weight means the same
  for every op and block.

``summarize_probes`` groups the runs by (op, width, depth) and gives each statistic's mean over seeds with
its 95% t interval; ``plot_probes`` draws them against width, one line per op.
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import torch
from torch import nn

from ..records.files import atomic_write
from .baseline import fit_linear
from .figures import Clip, dodge, error_bar
from .rank import rank_stats
from .stats import LEVEL, mean_ci

RANK_IMAGES, PROBE_TRAIN, PROBE_TEST = 256, 2000, 1000
STATS = ("effective_rank", "energy_90", "energy_99", "numerical_rank", "probe_top1")


@torch.no_grad()
def _features(model: nn.Module, x: torch.Tensor, batch: int, hidden: bool) -> Dict[int, List[torch.Tensor]]:
    """block index -> per-batch fused hidden features (tokens, 3·width) if ``hidden``, else pooled block
    outputs (images, width)."""
    out: Dict[int, List[torch.Tensor]] = {}
    handles = []
    for i, block in enumerate(model.blocks):
        if hidden:
            handles.append(block.g.register_forward_pre_hook(
                lambda _m, args, i=i: out.setdefault(i, []).append(args[0].reshape(-1, args[0].shape[-1]).double())))
        else:  # DemoBlock output: (B, H, W, C) channels-last
            handles.append(block.register_forward_hook(
                lambda _m, _a, y, i=i: out.setdefault(i, []).append(y.mean(dim=(1, 2)).double())))
    try:
        for start in range(0, len(x), batch):
            model(x[start:start + batch])
    finally:
        for h in handles:
            h.remove()
    return out


def probe_model(model: nn.Module, x_train: torch.Tensor, y_train: torch.Tensor, x_val: torch.Tensor,
                y_val: torch.Tensor, num_classes: int, rank_images: int = RANK_IMAGES, probe_train: int = PROBE_TRAIN,
                probe_test: int = PROBE_TEST, batch: int = 256) -> Dict[str, Any]:
    """{"images", "tokens", "blocks": [{"block", "hidden_dim", effective_rank, energy_90, energy_99,
    numerical_rank, probe_top1}]} for a DemoNet (anything with ``blocks`` whose blocks have a Linear ``g``)."""
    model = model.eval()
    x_rank = x_val[:rank_images]
    hidden = _features(model, x_rank, batch, hidden=True)
    xt, yt = x_train[:probe_train], y_train[:probe_train]
    xv, yv = x_val[:probe_test], y_val[:probe_test]
    pooled_train = _features(model, xt, batch, hidden=False)
    pooled_val = _features(model, xv, batch, hidden=False)
    blocks = []
    for i in sorted(hidden):
        h = torch.cat(hidden[i])
        row: Dict[str, Any] = {"block": i, "hidden_dim": int(h.shape[1]), **rank_stats(h).as_dict()}
        ft, fv = torch.cat(pooled_train[i]), torch.cat(pooled_val[i])
        mean, std = ft.mean(0, keepdim=True), ft.std(0, keepdim=True).clamp_min(1e-8)
        row["probe_top1"] = fit_linear((ft - mean) / std, yt, (fv - mean) / std, yv, num_classes)
        blocks.append(row)
    tokens = blocks[0]["n"] if blocks else 0
    return {"images": int(len(x_rank)), "tokens": int(tokens), "probe_train": int(len(xt)),
            "probe_test": int(len(xv)), "blocks": blocks}


def block_mean(result: Dict[str, Any], key: str) -> Optional[float]:
    values = [b[key] for b in result["blocks"] if b.get(key) is not None]
    return sum(values) / len(values) if values else None


def summarize_probes(runs: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Runs (each with "op", "width", "depth", "seed" and a ``probe_model`` result under "probe") -> one
    group per (op, width, depth): the mean over blocks of each statistic (and the last block's probe
    accuracy), then its mean over seeds with a 95% t interval."""
    groups: Dict[Any, List[Dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((str(run["op"]), run["width"], run["depth"]), []).append(run)
    out = []
    for (op, width, depth), members in sorted(groups.items(), key=lambda kv: (kv[0][2], kv[0][1], kv[0][0])):
        group: Dict[str, Any] = {"op": op, "width": width, "depth": depth,
                                 "seeds": sorted(m["seed"] for m in members)}
        per_run = {key: [block_mean(m["probe"], key) for m in members] for key in STATS}
        per_run["probe_top1_last_block"] = [m["probe"]["blocks"][-1]["probe_top1"] for m in members]
        for key, values in per_run.items():
            values = [v for v in values if v is not None]
            mean, lo, hi = mean_ci(values)
            group[key] = {"mean": mean, "lo": lo, "hi": hi, "n": len(values),
                          "min": min(values, default=None), "max": max(values, default=None)}
        out.append(group)
    return out


def plot_probes(groups: Sequence[Dict[str, Any]], path: Path, title: str = "") -> None:
    """Effective rank (mean over blocks), 99%-energy count (mean over blocks) and the last block's probe
    accuracy against width, one series per op (and depth when there are several), 95% t CI over seeds. The runs
    behind each point (their number may differ between points) are in the legend; points are not joined, as only
    the widths drawn were probed; each axis is spent on the runs' own values, an interval past them cut at the edge
    (arrow)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    depths = sorted({g["depth"] for g in groups})
    lines: Dict[Any, List[Dict[str, Any]]] = {}
    for g in groups:
        lines.setdefault((g["op"], g["depth"]), []).append(g)
    panels = (("effective_rank", "effective rank of op(act(x1), x2)\n(mean over blocks)"),
              ("energy_99", "singular values to 99% energy\n(mean over blocks)"),
              ("probe_top1_last_block", "linear-probe top-1 of the last block's\npooled output (%)"))
    fig, axes = plt.subplots(1, 3, figsize=(15.0, 6.0), layout="constrained")
    colors = {"sum": "#1f77b4", "star": "#ff7f0e"}
    spare = iter(("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"))
    widths = sorted({g["width"] for g in groups})
    log_x = len(widths) > 1 and widths[0] > 0 and widths[-1] / widths[0] >= 4
    span = (widths[-1] - widths[0]) or 1.0
    clips, log_y = {}, {}
    for key, _ in panels:  # the runs' own range (and the hidden width 3·width on the rank panels)
        values = [v for g in groups for v in (g[key].get("min"), g[key].get("max"), g[key]["mean"]) if v is not None]
        keep = [3 * w for w in widths] if key != "probe_top1_last_block" else []
        # rank grows with width: a log axis when it spans 8x or more, padded by a factor rather than a length
        log_y[key] = key != "probe_top1_last_block" and bool(values) and min(values) > 0 and \
            max(values + keep) / min(values) >= 8
        clips[key] = Clip(values, keep=keep, bounds=(0.0, 100.0) if key == "probe_top1_last_block" else (0.0, 1e18))
        if log_y[key]:
            clips[key].lo, clips[key].hi = min(values + keep) / 1.15, max(values + keep) * 1.15
    for i, ((op, depth), members) in enumerate(lines.items()):
        color = colors.get(op) or colors.setdefault(op, next(spare, "0.4"))
        members = sorted(members, key=lambda g: g["width"])
        counts = "/".join(str(g["effective_rank"].get("n", len(g["seeds"]))) for g in members)
        name = (op if len(depths) == 1 else f"{op}, depth {depth}") + f" (n = {counts})"
        shift = i - (len(lines) - 1) / 2
        for ax, (key, _) in zip(axes, panels):
            for j, g in enumerate(members):
                x = dodge(g["width"], shift, log_x, span, ratio=1.03)
                error_bar(ax, x, g[key]["mean"], g[key]["lo"], g[key]["hi"], clips[key], fmt="o", color=color,
                          capsize=3, markersize=5, markerfacecolor=color if g[key]["lo"] is not None else "white",
                     label=name if j == 0 else None)
    for key in ("effective_rank", "energy_99"):  # the most a block's hidden features could span
        ax = axes[[p[0] for p in panels].index(key)]
        ax.plot(widths, [3 * w for w in widths], ":", color="0.5", linewidth=1.0, label="hidden width 3·width")
    for ax, (key, ylabel) in zip(axes, panels):
        ax.set_xlabel("width (channels)" + (" (log scale)" if log_x else ""))
        ax.set_ylabel(ylabel, fontsize=9)
        if log_x:
            ax.set_xscale("log", base=2)
        ax.set_xticks(widths)
        ax.set_xticklabels([str(w) for w in widths])
        ax.minorticks_off()
        ax.grid(True, alpha=0.3)
        if log_y[key]:
            ax.set_yscale("log", base=2)
        clips[key].apply(ax)
    if title:
        fig.suptitle(textwrap.fill(title, 120), fontsize=10)
    widths_text = "/".join(map(str, widths))
    note = (f"Points: mean over seeds; n = seeds at widths {widths_text}, in the legend (a single seed: hollow, no "
            f"interval). Error bars: {LEVEL:.0%} t CI over seeds (n − 1 df). Points are not joined: only widths "
            f"{', '.join(map(str, widths))} were probed. Rank statistics over every token of a fixed set of evaluation "
            "images, column means removed. Probe: softmax regression on standardised mean-pooled block outputs.")
    if any(c.clipped for c in clips.values()):
        note += " Axes show the runs' own range: an interval running past it is cut at the edge (arrow)."
    handles, labels = axes[0].get_legend_handles_labels()  # the same ops in every panel: one legend, below them
    height = fig.get_size_inches()[1]
    note_top = (0.08 + 0.135 * len(textwrap.wrap(note, 190))) / height
    ncol = min(len(labels), 4)
    legend = fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, note_top), ncol=ncol, fontsize=8,
                        frameon=False, title=f"error bars: {LEVEL:.0%} t CI over seeds; n = seeds at widths "
                        f"{widths_text}", title_fontsize=8)
    legend.set_in_layout(False)
    fig.text(0.5, 0.005, textwrap.fill(note, 190), ha="center", va="bottom", fontsize=7.5)
    bottom = note_top + (0.3 + 0.2 * -(-len(labels) // ncol)) / height
    fig.get_layout_engine().set(rect=(0, bottom, 1, 1 - bottom))
    atomic_write(Path(path), lambda f: fig.savefig(f, format="png", dpi=130))
    plt.close(fig)
