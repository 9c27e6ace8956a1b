"""What a protocol sweep costs before it is launched: the training step of each model of the protocol
presets (docs/protocol.md), timed interleaved in one process (so a busy machine slows them alike), and each
preset's estimated core-hours at its configured budget.

    python scripts/benchmark_protocol_cost.py [--presets fig1_width,starnet_op] [--rounds 8] [--threads 1]

One AdamW step at the preset's batch size on random inputs of the preset's image shape; a job's cost is
``epochs * train_size / images_per_s``, summed over the sweep's jobs. On a loaded machine trust the ratios,
not the absolute hours.
"""
from __future__ import annotations

import argparse
import itertools
from pathlib import Path
from typing import Dict, List, Tuple

import torch

import experiments.config  # noqa: F401  (registers the config schema that conf/ names)
from experiments.tools.cli import positive_int
from experiments.train.timing import interleaved
from experiments.train.models import build_model

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ("fig1_width", "table3_depth", "no_act", "starnet_op", "budget_curve_55k")
MODEL_KEYS = ("model.name", "model.variant", "model.act", "width", "depth")  # what changes a step's cost


def compose(overrides: List[str]):
    from hydra import compose as hcompose, initialize_config_dir
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hcompose("config", overrides=overrides, return_hydra_config=True)


def sweep_jobs(preset: str) -> List[List[str]]:
    """The overrides of each job of the preset's sweep (Hydra's basic sweeper: a cartesian product)."""
    params = compose([f"experiment={preset}"]).hydra.sweeper.params or {}
    axes = [[f"{k}={v}" for v in str(values).split(",")] for k, values in params.items()]
    return [[f"experiment={preset}", *job] for job in itertools.product(*axes)]


def model_key(cfg) -> Tuple:
    return tuple(str(cfg.get("model", {}).get(k.split(".", 1)[1]) if "." in k else cfg.get(k)) for k in MODEL_KEYS)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", default=",".join(PRESETS), help="comma-separated experiment presets")
    p.add_argument("--rounds", type=positive_int, default=8, help="timed steps per model (best is kept)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads (the protocol: 1 per job)")
    a = p.parse_args(argv)
    presets = [s for s in a.presets.split(",") if s]
    known = sorted(f.stem for f in (ROOT / "conf" / "experiment").glob("*.yaml"))
    unknown = [s for s in presets if s not in known]
    if unknown or not presets:
        p.error(f"unknown preset(s): {', '.join(unknown) or '(none)'}; valid: {', '.join(known)}")
    torch.set_num_threads(a.threads)

    jobs: Dict[str, List] = {s: [compose(o) for o in sweep_jobs(s)] for s in presets}
    models, steps = {}, {}
    for cfg in (c for cs in jobs.values() for c in cs):
        key = model_key(cfg)
        if key in models:
            continue
        d, t = cfg.data, cfg.trainer
        model = build_model(cfg, d.in_chans, d.num_classes).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        x = torch.randn(t.batch_size, d.in_chans, d.image_size, d.image_size)
        y = torch.randint(0, d.num_classes, (t.batch_size,))

        def step(model=model, opt=opt, x=x, y=y):
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        models[key], steps[key] = (model, t.batch_size), step
    timed = interleaved(steps, rounds=a.rounds, warmup=2)
    images_per_s = {k: models[k][1] / min(v) for k, v in timed.times.items()}
    ref = min(images_per_s.values())
    print(f"{'model (' + ', '.join(MODEL_KEYS) + ')':<58} {'img/s':>8} {'step cost':>10}")
    for k, ips in sorted(images_per_s.items(), key=lambda kv: -kv[1]):
        print(f"{', '.join(v for v in k if v != 'None'):<58} {ips:8.0f} {ref / ips:9.2f}x")
    print(f"\n(step cost relative to the slowest model; {a.threads} thread(s), best of {a.rounds} interleaved rounds)\n")
    print(f"{'preset':<20} {'jobs':>5} {'epochs':>7} {'images':>8} {'core-hours':>11}")
    for s, cfgs in jobs.items():
        seconds = sum(c.trainer.epochs * c.data.train_size / images_per_s[model_key(c)] for c in cfgs)
        epochs = sorted({int(c.trainer.epochs) for c in cfgs})
        print(f"{s:<20} {len(cfgs):5d} {'/'.join(map(str, epochs)):>7} {cfgs[0].data.train_size:8d} {seconds / 3600:11.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
