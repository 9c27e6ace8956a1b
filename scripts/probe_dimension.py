"""The implicit-dimension probe: do star's hidden features span more dimensions than sum's?

    python scripts/probe_dimension.py RUN_DIR [RUN_DIR ...] [--out outputs/probe_dimension] [--images 256]
    python scripts/probe_dimension.py outputs/sweeps/fig1_width/*/op=*      # every job of a sweep

What the paper predicts ("Rewrite the Stars", Ma et al., CVPR 2024, sec. 3): the element-wise product of two
linear branches maps a d-dimensional input into an implicit space of about d^2/2 dimensions (every pairwise
product of input features), while a sum stays in a space of the input's dimension. So, at the same width,
**star's fused hidden features op(act(x1), x2) should span more dimensions than sum's**. The paper makes no
prediction of how that lead changes with width; its d^2/2 grows with d (faster than the explicit width 3d), so if
its argument says anything about width it is that the lead grows. A richer hidden space might also make each
block's output more linearly separable (higher probe accuracy). The probe measures both; it assumes neither.

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

Each completed run's own result is also kept in its dir as probe.json, with the settings it was measured with and
the run's config hash, so it outlives the checkpoint: a run dir holding its records but no last.pt (a sweep's
committed records, docs/results/<preset>/runs) is summarised from its probe.json when the settings match. A run is
probed again when its probe.json is missing, stale (other settings, another configuration) or --recompute is given.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

import torch
from omegaconf import OmegaConf

from demonet import DemoNet
from experiments.analysis.figures import DATA_LABELS
from experiments.analysis.probe import PROBE_TEST, PROBE_TRAIN, RANK_IMAGES, probe_model, plot_probes, summarize_probes
from experiments.data import build_data
from experiments.errors import StarbenchError
from experiments.records import METRICS_FILE, atomic_write_text
from experiments.tools.export import model_from_run
from experiments.train.trainer import CHECKPOINT

PREDICTION = ("star's fused hidden features span more dimensions (higher effective rank) than sum's at the same "
              "width (Ma et al., CVPR 2024, sec. 3: about d²/2 implicit dimensions, a number that grows with width)")


PROBE_FILE = "probe.json"  # a completed run's own probe result, beside its metrics.json


def settings_of(args) -> dict:
    return {"images": args.images, "probe_train": args.probe_train, "probe_test": args.probe_test}


def saved_probe(run_dir: Path, settings: dict) -> Optional[dict]:
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
    run = {"run_dir": str(run_dir), "op": op if isinstance(op, str) else "[" + ",".join(map(str, op)) + "]",
           "act": cfg.model.get("act"), "width": int(cfg.width), "depth": int(cfg.depth), "seed": int(cfg.seed),
           "data": cfg.data.name, "top1": metrics.get("top1"), "status": metrics.get("status"), "probe": result}
    if metrics.get("status") == "completed":  # an unfinished run's checkpoint is not the model it will be
        atomic_write_text(run_dir / PROBE_FILE, json.dumps({"settings": settings_of(args), "config_hash":
                                                             metrics.get("config_hash"), "run": run}, indent=1) + "\n")
    return run


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
    ap.add_argument("--recompute", action="store_true", help=f"probe every run from its checkpoint, even one whose "
                    f"{PROBE_FILE} has these settings")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        settings = settings_of(args)
        saved = {d: None if args.recompute else saved_probe(d, settings) for d in args.run_dirs}
        for run_dir in args.run_dirs:  # every dir checked before any is probed: a typo fails at once
            check_run(run_dir, cached=saved[run_dir] is not None)
        runs = []
        for run_dir in args.run_dirs:
            run = saved[run_dir] or probe_run(run_dir, args)
            runs.append(run)
            if saved[run_dir]:
                print(f"reused {run_dir}/{PROBE_FILE} (measured with these settings)", file=sys.stderr)
                continue
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
    data = sorted({DATA_LABELS.get(r["data"], r["data"]) for r in runs})
    plot_probes(groups, fig_path, f"Implicit-dimension probe: DemoNet on {'/'.join(data)} "
                f"({len(runs)} run{'s' if len(runs) != 1 else ''}); prediction: {PREDICTION}")
    for line in verdict_lines(groups):
        print(line)
    print(json_path)
    print(fig_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
