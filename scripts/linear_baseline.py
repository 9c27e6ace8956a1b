"""The linear baseline of docs/protocol.md for one data config, at one or more L2 weights.

    python scripts/linear_baseline.py +protocol=demonet data.val_from=train data.val_size=5000 \
        data.train_size=55000 --l2 1e-4 1e-3 1e-2 3e-2 1e-1

The overrides are run.py's; only the ``data`` node matters (the same images a job of that config trains and
is scored on). Sweeps fit the baseline themselves at the protocol's L2 (``experiments/analysis/baseline.py``);
this script is how the protocol's L2 grid is measured and reproduced.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

import experiments.config  # noqa: F401  (registers the config schema that conf/ names)
from experiments.analysis.baseline import L2, fit_linear
from experiments.data import build_data
from experiments.errors import StarbenchError

ROOT = Path(__file__).resolve().parents[1]


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got '{text}'") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("overrides", nargs="*", help="run.py overrides that set the data, e.g. +protocol=demonet")
    p.add_argument("--l2", type=positive_float, nargs="+", default=[L2], help=f"L2 weights (default {L2})")
    p.add_argument("--json", type=Path, help="also write {l2: top-1} here")
    a = p.parse_intermixed_args(argv)
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    try:
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose("config", overrides=a.overrides)
    except HydraException as e:
        p.error(str(e).splitlines()[0])
    torch.set_num_threads(1)  # the fit is small; one core leaves the other to a sweep
    tcfg = OmegaConf.create({"batch_size": 1, "eval_batch_size": 1, "mixup": 0, "cutmix": 0})
    try:
        data = build_data(cfg.data, tcfg, seed=0, device=torch.device("cpu"))
    except StarbenchError as e:
        p.error(str(e))
    print(f"{cfg.data.name}: {len(data.y_train)} training images, {len(data.y_val)} evaluation images "
          f"(val_from={cfg.data.get('val_from', 'test')})")
    results = {}
    for l2 in a.l2:
        start = time.time()
        results[l2] = fit_linear(data.x_train, data.y_train, data.x_val, data.y_val, data.num_classes, l2=l2)
        print(f"L2 {l2:g}: {results[l2]:.2f}% top-1 ({time.time() - start:.0f} s)", flush=True)
    if a.json is not None:
        from experiments.records import atomic_write_text
        atomic_write_text(a.json, json.dumps({f"{k:g}": v for k, v in results.items()}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
