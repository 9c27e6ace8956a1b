"""Hand-written finished sweeps for the W&B report and chart tests: op × one axis × seed jobs, each with a
metrics.json (final metric and a per-epoch history) and a .hydra/config.yaml, and the sweep's summary.md."""
import json

import yaml

from experiments.analysis import aggregate
from experiments.analysis.baseline import CACHE_FILE, data_key

# task -> (metric, swept axis as a config path, its values, the loss key in each epoch row)
TASKS = {"classify": ("top1", "width", [16, 32], "train_loss"),
         "detect": ("map50_95", "model.variant", ["s050", "s100"], "train_box_loss")}


def make_sweep(root, task="classify", seeds=(0, 1, 2), baseline=None):
    """A finished sweep dir: op × axis × seed jobs (metrics.json with a history, .hydra/config.yaml), and
    its summary.md from ``aggregate`` (no W&B). ``baseline``: the linear baseline of its images, put in the sweep's
    baseline cache (its runs score 60–67.5%: 90 flags every one as under-trained)."""
    metric, axis, values, loss = TASKS[task]
    for i, value in enumerate(values):
        for op in ("sum", "star"):
            for seed in seeds:
                job = root / f"op={op},seed={seed},{axis}={value}"
                (job / ".hydra").mkdir(parents=True)
                cfg = {"op": op, "seed": seed, "width": 32, "depth": 4,
                       "model": {"name": "starnet" if task == "detect" else "demonet", "act": "relu6",
                                 "variant": None},
                       "data": {"name": "fashion_det" if task == "detect" else "fashion_mnist"},
                       "trainer": {"epochs": 2}, "task": {"name": task}, "logger": {"name": "none"}}
                node = cfg
                *parents, leaf = axis.split(".")
                for p in parents:
                    node = node[p]
                node[leaf] = value
                (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
                final = 60.0 + 5 * i + (2.0 if op == "star" else 0.0) + 0.5 * seed
                history = [{"epoch": e, loss: 1.0 / e, metric: final - 2 + e} for e in (1, 2)]
                (job / "metrics.json").write_text(json.dumps({
                    "status": "completed", "error": None, "task": task, "model": cfg["model"]["name"], "op": op,
                    "seed": seed, "width": 32, "depth": 4, "data": cfg["data"]["name"], "epochs": 2, metric: final,
                    "history": history}))
    if baseline is not None:
        (root / CACHE_FILE).write_text(json.dumps({data_key(cfg["data"]): baseline}))
    aggregate(root, wandb=None)
    return root
