"""The implicit-dimension probe: do star's hidden features span more dimensions than sum's?

    python scripts/probe_dimension.py RUN_DIR [RUN_DIR ...] [--out outputs/probe_dimension] [--images 256]
    python scripts/probe_dimension.py outputs/sweeps/fig1_width/*/op=*      # every job of a sweep

What the paper predicts ("Rewrite the Stars", Ma et al., CVPR 2024, sec. 3): the element-wise product of two
linear branches maps a d-dimensional input into an implicit space of about d^2/2 dimensions (every pairwise
product of input features), while a sum stays in a space of the input's dimension. So, at the same width,
**star's fused hidden features op(act(x1), x2) should span more dimensions than sum's, and the gap should be
largest at small width**, where sum's features are most constrained and star's implicit expansion matters
most. A richer hidden space should also make each block's output more linearly separable (higher probe
accuracy), again most at small width. The probe measures both; it does not assume they hold.

For each trained DemoNet run (a dir with .hydra/config.yaml and last.pt; its EMA weights when it kept an
EMA), per block: (a) the effective rank (Roy & Vetterli 2007: exp of the entropy of the normalised singular
values) and the number of singular values reaching 90% and 99% of the energy of the fused hidden features, the
input of the block's Linear g, over every token of the first --images evaluation images (column means removed;
experiments/analysis/rank.py); (b) the top-1 of a linear probe (softmax regression,
experiments.analysis.baseline.fit_linear) on each block's mean-pooled output, fitted on the first
--probe-train training images and scored on the first --probe-test evaluation images. The runs are grouped by
(op, width, depth); each statistic is averaged over blocks, then over seeds (95% t interval).

Writes probe_dimension.json (every run's per-block numbers and the groups) and probe_dimension.png (effective
rank and 99%-energy count averaged over blocks, and the last block's probe accuracy, against width, one line
per op) into --out, and prints, for each width with both star and sum, whether star's effective rank is the
higher. Exit 1 with a one-line error for a dir that is not a trained DemoNet classification run.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

from demonet import DemoNet
from experiments.analysis.probe import PROBE_TEST, PROBE_TRAIN, RANK_IMAGES, probe_model, plot_probes, summarize_probes
from experiments.data import build_data
from experiments.errors import StarbenchError
from experiments.records import METRICS_FILE, atomic_write_text
from experiments.tools.export import model_from_run
from experiments.train.trainer import CHECKPOINT

PREDICTION = ("star's fused hidden features span more dimensions (higher effective rank) than sum's at the same "
              "width, the gap largest at small width (Ma et al., CVPR 2024, sec. 3)")


def check_run(run_dir: Path) -> None:
    """A trained DemoNet classification run, or a StarbenchError saying what it is instead."""
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
    if not (run_dir / CHECKPOINT).is_file():
        raise StarbenchError(f"{run_dir} has no {CHECKPOINT} (not trained yet?)")


def probe_run(run_dir: Path, args) -> dict:
    check_run(run_dir)
    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    model, _ = model_from_run(run_dir)
    if not isinstance(model, DemoNet):
        raise StarbenchError(f"{run_dir} did not build a DemoNet ({type(model).__name__})")
    if cfg.data.name == "imagenet":
        raise StarbenchError(f"{run_dir} trained on ImageNet folders; the probe needs an in-memory data set")
    data = build_data(cfg.data, cfg.trainer, seed=int(cfg.seed), device=torch.device("cpu"))
    result = probe_model(model, data.x_train, data.y_train, data.x_val, data.y_val, data.num_classes,
                         rank_images=args.images, probe_train=args.probe_train, probe_test=args.probe_test)
    metrics = {}
    try:
        metrics = json.loads((run_dir / METRICS_FILE).read_text())
    except (OSError, ValueError):
        pass
    op = OmegaConf.to_container(cfg.op) if OmegaConf.is_list(cfg.op) else cfg.op
    return {"run_dir": str(run_dir), "op": op if isinstance(op, str) else "[" + ",".join(map(str, op)) + "]",
            "act": cfg.model.get("act"), "width": int(cfg.width), "depth": int(cfg.depth), "seed": int(cfg.seed),
            "data": cfg.data.name, "top1": metrics.get("top1"), "status": metrics.get("status"), "probe": result}


def verdict_lines(groups) -> list:
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    ap.add_argument("--out", type=Path, default=Path("outputs") / "probe_dimension")
    ap.add_argument("--images", type=int, default=RANK_IMAGES, help="evaluation images whose tokens the rank "
                    f"statistics use (default {RANK_IMAGES})")
    ap.add_argument("--probe-train", type=int, default=PROBE_TRAIN, help="training images the linear probe is "
                    f"fitted on (default {PROBE_TRAIN})")
    ap.add_argument("--probe-test", type=int, default=PROBE_TEST, help="evaluation images it is scored on "
                    f"(default {PROBE_TEST})")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        for run_dir in args.run_dirs:  # every dir checked before any is probed: a typo fails at once
            check_run(run_dir)
        runs = []
        for run_dir in args.run_dirs:
            run = probe_run(run_dir, args)
            runs.append(run)
            capped = run["probe"]["tokens"] < 3 * run["width"]
            print(f"probed {run_dir}" + (f" (warning: {run['probe']['tokens']} tokens < hidden width "
                  f"{3 * run['width']}: the rank statistics are capped by the tokens; raise --images)"
                  if capped else ""), file=sys.stderr)
    except StarbenchError as e:
        print(f"probe_dimension: error: {e}", file=sys.stderr)
        return 1
    groups = summarize_probes(runs)
    args.out.mkdir(parents=True, exist_ok=True)
    json_path, fig_path = args.out / "probe_dimension.json", args.out / "probe_dimension.png"
    atomic_write_text(json_path, json.dumps({"prediction": PREDICTION, "images": args.images,
                                             "probe_train": args.probe_train, "probe_test": args.probe_test,
                                             "groups": groups, "runs": runs}, indent=1) + "\n")
    data = sorted({r["data"] for r in runs})
    plot_probes(groups, fig_path, f"Implicit-dimension probe: DemoNet on {'/'.join(data)} "
                f"({len(runs)} run{'s' if len(runs) != 1 else ''}); prediction: {PREDICTION}")
    for line in verdict_lines(groups):
        print(line)
    print(json_path)
    print(fig_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
