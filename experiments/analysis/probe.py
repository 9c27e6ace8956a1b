"""The implicit-dimension probe of trained DemoNets (``scripts/probe_dimension.py``), and its records.

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

Each completed run's own result is kept in its dir as ``probe.json``, with the settings it was measured with and the
run's config hash, so it outlives the checkpoint (``saved_probe``); ``probe_dimension`` probes the runs that have
none for these settings, and writes the groups, every run and the figure.
"""
from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from omegaconf import OmegaConf
from torch import nn

from demonet import DemoNet

from ..data import build_data
from ..errors import StarbenchError
from ..records import METRICS_FILE, atomic_write_text
from ..records.files import atomic_write
from ..train.trainer import CHECKPOINT
from .baseline import fit_linear
from .figures import DATA_LABELS, Clip, dodge, error_bar
from .rank import rank_stats
from .stats import LEVEL, mean_ci

RANK_IMAGES, PROBE_TRAIN, PROBE_TEST = 256, 2000, 1000
PROBE_FILE = "probe.json"  # a completed run's own probe result, beside its metrics.json
JSON_FILE, FIG_FILE = "probe_dimension.json", "probe_dimension.png"
PREDICTION = ("star's fused hidden features span more dimensions (higher effective rank) than sum's at the same "
              "width (Ma et al., CVPR 2024, sec. 3: about d²/2 implicit dimensions, a number that grows with width)")
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


def probe_settings(images: int = RANK_IMAGES, probe_train: int = PROBE_TRAIN,
                   probe_test: int = PROBE_TEST) -> Dict[str, int]:
    """What a probe result depends on besides the run: saved with it, and compared before it is reused."""
    return {"images": images, "probe_train": probe_train, "probe_test": probe_test}


def saved_probe(run_dir: Path, settings: Dict[str, int]) -> Optional[Dict[str, Any]]:
    """The run's probe.json result when it was measured with ``settings`` on this run's configuration, else None."""
    try:
        saved = json.loads((run_dir / PROBE_FILE).read_text())
        metrics = json.loads((run_dir / METRICS_FILE).read_text())
    except (OSError, ValueError):
        return None
    if (not isinstance(saved, dict) or saved.get("settings") != settings or metrics.get("status") != "completed"
            or saved.get("config_hash") != metrics.get("config_hash") or not isinstance(saved.get("run"), dict)):
        return None
    return {**saved["run"], "run_dir": str(run_dir)}


def check_run(run_dir: Path, cached: bool = False) -> None:
    """A trained DemoNet classification run (with its checkpoint, unless ``cached``: its probe.json is usable),
    or a StarbenchError saying what it is instead."""
    config = run_dir / ".hydra" / "config.yaml"
    if not run_dir.is_dir():
        raise StarbenchError(f"{run_dir} {'is not a directory' if run_dir.exists() else 'does not exist'}")
    if not config.is_file():
        raise StarbenchError(f"{run_dir} is not a run dir (no .hydra/config.yaml)")
    cfg = OmegaConf.load(config)
    task = OmegaConf.select(cfg, "task.name")
    model = OmegaConf.select(cfg, "model.name")
    if task != "classify" or model != "demonet":
        raise StarbenchError(f"{run_dir} is a {model} {task} run; the probe covers DemoNet classification runs")
    if not cached and not (run_dir / CHECKPOINT).is_file():
        raise StarbenchError(f"{run_dir} has no {CHECKPOINT} (not trained yet?)"
                             + (f" and no {PROBE_FILE} measured with these settings" if (run_dir / PROBE_FILE).exists()
                                else ""))


# The trained model of a run dir (``experiments.tools.export.model_from_run``: it rebuilds the model as the task
# does, a floor above analysis, so the caller passes it in).
LoadModel = Callable[[Path], Tuple[nn.Module, Any]]


def probe_run(run_dir: Path, settings: Dict[str, int], load_model: LoadModel) -> Dict[str, Any]:
    """Probe one run from its checkpoint; a completed run keeps the result as its probe.json."""
    check_run(run_dir)
    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    model, _ = load_model(run_dir)
    if not isinstance(model, DemoNet):
        raise StarbenchError(f"{run_dir} did not build a DemoNet ({type(model).__name__})")
    if cfg.data.name == "imagenet":
        raise StarbenchError(f"{run_dir} trained on ImageNet folders; the probe needs an in-memory data set")
    data = build_data(cfg.data, cfg.trainer, seed=int(cfg.seed), device=torch.device("cpu"))
    result = probe_model(model, data.x_train, data.y_train, data.x_val, data.y_val, data.num_classes,
                         rank_images=settings["images"], probe_train=settings["probe_train"],
                         probe_test=settings["probe_test"])
    metrics = {}
    try:
        metrics = json.loads((run_dir / METRICS_FILE).read_text())
    except (OSError, ValueError):
        pass
    op = OmegaConf.to_container(cfg.op) if OmegaConf.is_list(cfg.op) else cfg.op
    run = {"run_dir": str(run_dir), "op": op if isinstance(op, str) else "[" + ",".join(map(str, op)) + "]",
           "act": cfg.model.get("act"), "width": int(cfg.width), "depth": int(cfg.depth), "seed": int(cfg.seed),
           "data": cfg.data.name, "top1": metrics.get("top1"), "status": metrics.get("status"), "probe": result}
    if metrics.get("status") == "completed":  # an unfinished run's checkpoint is not the model it will be
        atomic_write_text(run_dir / PROBE_FILE, json.dumps({"settings": settings, "config_hash":
                                                             metrics.get("config_hash"), "run": run}, indent=1) + "\n")
    return run


def verdict_lines(groups: Sequence[Dict[str, Any]]) -> List[str]:
    """Per (width, depth) with both star and sum: star's and sum's effective rank and whether star's is higher."""
    by = {(g["op"], g["width"], g["depth"]): g for g in groups}
    lines = []
    for (op, width, depth) in sorted(k for k in by if k[0] == "star"):
        other = by.get(("sum", width, depth))
        if other is None:
            continue
        s, t = by[(op, width, depth)]["effective_rank"], other["effective_rank"]
        apart = s["lo"] is not None and t["hi"] is not None and (s["lo"] > t["hi"] or s["hi"] < t["lo"])
        lines.append(f"width {width}, depth {depth}: effective rank star {s['mean']:.1f} vs sum {t['mean']:.1f} "
                     f"({'star higher' if s['mean'] > t['mean'] else 'star NOT higher'}"
                     f"{', intervals apart' if apart else ''}; hidden width {3 * width})")
    return lines


def probe_dimension(run_dirs: Sequence[Path], out: Path, settings: Dict[str, int], load_model: LoadModel,
                    recompute: bool = False, threads: Optional[int] = None) -> List[str]:
    """Probe every run (reusing each probe.json measured with ``settings`` unless ``recompute``), write
    probe_dimension.json and probe_dimension.png into ``out``; the lines to print: the verdict per width, then the
    two paths. Progress goes to stderr. Every dir is checked before any is probed, so a typo fails at once, with a
    StarbenchError."""
    if threads:
        torch.set_num_threads(threads)
    saved = {d: None if recompute else saved_probe(d, settings) for d in run_dirs}
    for run_dir in run_dirs:
        check_run(run_dir, cached=saved[run_dir] is not None)
    runs = []
    for run_dir in run_dirs:
        run = saved[run_dir] or probe_run(run_dir, settings, load_model)
        runs.append(run)
        if saved[run_dir]:
            print(f"reused {run_dir}/{PROBE_FILE} (measured with these settings)", file=sys.stderr)
            continue
        capped = run["probe"]["tokens"] < 3 * run["width"]
        print(f"probed {run_dir}" + (f" (warning: {run['probe']['tokens']} tokens < hidden width "
              f"{3 * run['width']}: the rank statistics are capped by the tokens; raise --images)"
              if capped else ""), file=sys.stderr)
    groups = summarize_probes(runs)
    out.mkdir(parents=True, exist_ok=True)
    json_path, fig_path = out / JSON_FILE, out / FIG_FILE
    atomic_write_text(json_path, json.dumps({"prediction": PREDICTION, **settings, "groups": groups, "runs": runs},
                                            indent=1) + "\n")
    data = sorted({DATA_LABELS.get(r["data"], r["data"]) for r in runs})
    plot_probes(groups, fig_path, f"Implicit-dimension probe: DemoNet on {'/'.join(data)} "
                f"({len(runs)} run{'s' if len(runs) != 1 else ''}); prediction: {PREDICTION}")
    return [*verdict_lines(groups), str(json_path), str(fig_path)]
