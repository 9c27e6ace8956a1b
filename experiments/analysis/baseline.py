"""The linear baseline of a classification sweep (docs/protocol.md, "a trained regime").

A multinomial logistic regression on the normalised pixels, fitted on **the same training images** as
the sweep's jobs and scored on the same evaluation images. A network that does not beat it clearly has
not learned anything a linear map could not, so its fusion op can hardly matter. The fit is fixed (full
batch L-BFGS, L2 weight 1e-2, float64, zero init): the same data give the same accuracy on any machine
up to float rounding. Results are cached next to the summary (so a committed results dir carries its baseline) and
in a per-user cache, both keyed by the data config: the fit on 55k images takes minutes, and every new sweep dir
on the same images would otherwise pay them again. ``STARBENCH_CACHE`` moves the per-user cache (default
``$XDG_CACHE_HOME/starbench``, i.e. ``~/.cache/starbench``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from filelock import FileLock

import torch
from omegaconf import OmegaConf

from ..data import build_data
from ..records import atomic_write_text

log = logging.getLogger("starbench")

L2 = 1e-2   # chosen on the protocol's validation split from 1e-4 ... 1e-1 (docs/protocol.md)
MAX_ITER = 500
CACHE_FILE = "linear_baseline.json"
# The data knobs that decide which images a job trains and is scored on.
DATA_KEYS = ("name", "root", "image_size", "in_chans", "num_classes", "train_size", "val_size", "val_from",
             "mean", "std", "noise")


PROGRESS_S = 15.0  # a fit still running after this long says how far it is, and again as often


def fit_linear(x_train: torch.Tensor, y_train: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor,
               num_classes: int, l2: float = L2, max_iter: int = MAX_ITER) -> float:
    """Top-1 (%) on (x_val, y_val) of softmax regression fitted on (x_train, y_train). A fit of minutes (55k images)
    logs its progress every ``PROGRESS_S``; the numbers do not depend on it."""
    xt = x_train.reshape(len(x_train), -1).double()
    xv = x_val.reshape(len(x_val), -1).double()
    w = torch.zeros(xt.shape[1], num_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-9, tolerance_change=1e-12,
                            history_size=20, line_search_fn="strong_wolfe")
    yt = y_train.long()
    start = next_report = time.monotonic()
    next_report += PROGRESS_S
    evaluations = 0

    def closure():
        nonlocal evaluations, next_report
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ w + b, yt) + 0.5 * l2 * (w * w).sum()
        loss.backward()
        evaluations += 1
        if time.monotonic() >= next_report:
            log.info("linear baseline: %d loss evaluations of at most %d, loss %.4f (%.0f s)", evaluations,
                     opt.defaults["max_eval"], loss.item(), time.monotonic() - start)
            next_report = time.monotonic() + PROGRESS_S
        return loss

    opt.step(closure)
    with torch.no_grad():
        pred = (xv @ w + b).argmax(1)
    return 100.0 * float((pred == y_val.long()).double().mean())


# Data knobs that only some data sets have (the pair task's pairing seed): keyed only where present, so that the
# keys of the data sets without them, and the baselines cached under those keys, stay as they were.
OPTIONAL_DATA_KEYS = ("seed",)


def data_key(dcfg: Mapping[str, Any]) -> str:
    picked = {k: dcfg.get(k) for k in DATA_KEYS}
    picked.update({k: dcfg.get(k) for k in OPTIONAL_DATA_KEYS if k in dcfg})
    return hashlib.sha256(json.dumps(picked, sort_keys=True, default=str).encode()).hexdigest()[:16]


def user_cache_dir() -> Path:
    """The per-user cache of baselines: ``STARBENCH_CACHE``, else ``$XDG_CACHE_HOME/starbench``."""
    if os.environ.get("STARBENCH_CACHE"):
        return Path(os.environ["STARBENCH_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "starbench"


def _read_cache(path: Path) -> Dict[str, float]:
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):  # none yet, or not a cache: refit, and rewrite it
        return {}
    return cache if isinstance(cache, dict) else {}


def _remember(path: Path, key: str, acc: float, shared: bool) -> None:
    """Add ``key`` to the cache file at ``path``. The per-user one (``shared``) is written under a lock that stays
    in that cache dir: two sweeps ending at once must not drop each other's entry. A sweep dir's is its own."""
    def write():
        cache = _read_cache(path)
        cache[key] = acc
        atomic_write_text(path, json.dumps(cache, indent=1, sort_keys=True) + "\n")

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if shared:
            with FileLock(str(path.parent / ".lock")):
                write()
        else:
            write()
    except OSError as e:  # a read-only place: the baseline is still right, only not kept
        log.warning("linear baseline not cached in %s: %s", path.parent, e)


def linear_baseline(dcfg: Mapping[str, Any], cache_dir: Optional[Path] = None, fit: bool = True) -> Optional[float]:
    """The baseline accuracy for a data config (a job's ``data`` node), or None for data sets it does not
    apply to (ImageNet folders, detection). Read from ``cache_dir/linear_baseline.json``, else from the per-user
    cache, else fitted (``fit=False``: None instead); kept in both."""
    if dcfg.get("name") not in ("fashion_mnist", "fashion_pairs", "cifar10", "cifar100", "synthetic"):
        return None
    key = data_key(dcfg)
    local = Path(cache_dir) / CACHE_FILE if cache_dir is not None else None
    shared = user_cache_dir() / CACHE_FILE
    if local is not None and key in (cached := _read_cache(local)):
        return cached[key]
    acc = _read_cache(shared).get(key)
    if acc is None and not fit:
        return None
    if acc is None:
        dc = OmegaConf.create(dict(dcfg))
        tc = OmegaConf.create({"batch_size": 1, "eval_batch_size": 1, "mixup": 0, "cutmix": 0})
        data = build_data(dc, tc, seed=0, device=torch.device("cpu"))
        log.info("linear baseline: fitting softmax regression on %d training images, once for these images (then "
                 "cached in %s; minutes for 55k images)", len(data.y_train), shared.parent)
        acc = fit_linear(data.x_train, data.y_train, data.x_val, data.y_val, data.num_classes)
        log.info("linear baseline on %d training images: %.2f%% top-1", len(data.y_train), acc)
        _remember(shared, key, acc, shared=True)
    if local is not None:
        _remember(local, key, acc, shared=False)
    return acc
