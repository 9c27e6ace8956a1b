"""Task ``classify``: train and evaluate an image classifier (DemoNet or StarNet)."""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Dict

from omegaconf import DictConfig, OmegaConf
from timm.optim import list_optimizers

from starnet.ops import check_positive_int

from ..config import plain
from ..data import build_data
from ..data.small import check_fashion_root
from ..errors import StarbenchError
from ..records import Tracker
from ..train.device import broadcast_object, resolve_device, seed_everything, start_processes
from ..train.fast_paths import prepare_device
from ..train.models import build_model, count_flops, count_params, human_count, model_identity
from ..train.threads import parse_threads
from ..train.trainer import Trainer, peak_lr, saved_threads
from .base import TaskSpec

log = logging.getLogger("starbench")

DETECTION_DATA = ("yolo", "fashion_det")  # conf/data/ options only task=detect reads


def check_settings(cfg: DictConfig) -> None:
    """Bad numbers fail here, in one line, before data loads or a file is written."""
    tcfg, dcfg = cfg.trainer, cfg.data
    if dcfg.name in DETECTION_DATA:
        raise StarbenchError(f"data={dcfg.name} is detection data: add task=detect (e.g. python run.py task=detect "
                             f"data={dcfg.name}{' data.yaml=/path/to/data.yaml' if dcfg.name == 'yolo' else ''})")
    for key in ("epochs", "batch_size", "eval_batch_size"):
        check_positive_int(f"trainer.{key}", tcfg[key])
    parse_threads(tcfg.get("threads"))
    for key in ("train_size", "val_size"):
        if dcfg.get(key) is not None:
            check_positive_int(f"data.{key}", dcfg[key])
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or not 0 <= cfg.seed < 2 ** 32:
        raise StarbenchError(f"seed must be an integer from 0 to 2**32 - 1 (numpy's range), got {cfg.seed!r}")
    warmup = tcfg.warmup_epochs
    if not _is_number(warmup) or warmup < 0:
        raise StarbenchError(f"trainer.warmup_epochs must be a number >= 0, got {warmup!r}")
    if warmup > tcfg.epochs:
        raise StarbenchError(f"trainer.warmup_epochs={warmup} is longer than the run (trainer.epochs={tcfg.epochs}): "
                             f"its peak lr would never be reached; set trainer.warmup_epochs to at most {tcfg.epochs}")
    if OmegaConf.is_missing(dcfg, "root"):
        raise StarbenchError(f"data={dcfg.name} needs data.root=/path/to/{dcfg.name}")
    if dcfg.name == "fashion_mnist":
        check_fashion_root(dcfg.root, dcfg.download)
    # lr > 0; the floors and the weight decay may be 0; label smoothing below 1 (1 would leave no label)
    for key, ok, what in (("lr", lambda v: v > 0, "> 0"), ("min_lr", lambda v: v >= 0, ">= 0"),
                          ("warmup_lr", lambda v: v >= 0, ">= 0"), ("weight_decay", lambda v: v >= 0, ">= 0"),
                          ("label_smoothing", lambda v: 0 <= v < 1, "from 0 to below 1")):
        value = tcfg[key]
        if not _is_number(value) or not ok(value):
            raise StarbenchError(f"trainer.{key} must be a number {what}, got {value!r}")
    check_shape(cfg)
    # timm's optimizer names, with its prefixes (lookahead_adamw): the last part names the optimizer
    if str(tcfg.optimizer).lower().split("_")[-1] not in list_optimizers():
        raise StarbenchError(f"unknown trainer.optimizer '{tcfg.optimizer}'; e.g. adamw, sgd, lamb (timm's "
                             "optimizers: python -c 'import timm.optim; print(timm.optim.list_optimizers())')")
    for key in ("amp", "channels_last"):  # bool("no") would be True: only these three
        if tcfg[key] not in ("auto", True, False):
            raise StarbenchError(f"trainer.{key} must be auto, true or false, got {tcfg[key]!r}")


def _is_number(value: Any) -> bool:
    """A finite int or float (nan and inf pass every comparison-based check, then break training)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def check_shape(cfg: DictConfig) -> None:
    """DemoNet's width and depth are one positive integer each (a per-stage list is StarNet's), and its patch size
    divides the image (a stem stride that does not would silently drop the last rows and columns)."""
    if cfg.model.name != "demonet":
        return
    for key in ("width", "depth"):
        value = plain(cfg[key])
        if isinstance(value, list):
            raise StarbenchError(f"DemoNet's {key} is one number (its {'channels' if key == 'width' else 'blocks'}), "
                                 f"got {value}; a list of per-stage block counts is StarNet's (model=starnet)")
    patch, size = cfg.model.patch_size or cfg.data.patch_size, cfg.data.image_size
    if isinstance(patch, int) and not isinstance(patch, bool) and patch > 0 and size % patch:
        key = "model.patch_size" if cfg.model.patch_size else "data.patch_size"
        divisors = [d for d in range(1, size + 1) if size % d == 0]
        raise StarbenchError(f"{key}={patch} does not divide the {size}-pixel images: DemoNet's stem would drop their "
                             f"last {size % patch} rows and columns; use one of {', '.join(map(str, divisors))}")


_MODELS_CHECKED: set = set()  # the model parts of the configs check() has built, in this process


def check(cfg: DictConfig) -> None:
    """Everything about ``cfg`` that can be refused without loading data or writing a file: the numbers
    (``check_settings``), the device, and the model (built on the CPU and dropped, once per model config: 10 ms for
    the miniature DemoNet and 70 ms for StarNet-S4 on this project's 2-vCPU box, ~1 s for the paper's width-448
    DemoNet), so that ``run.py`` refuses a bad op, activation, variant or width before Hydra creates
    a run dir (``experiments.hydra_callbacks.Preflight``)."""
    try:
        check_settings(cfg)
        resolve_device(cfg.trainer.device)
        model_part = OmegaConf.to_yaml(OmegaConf.masked_copy(cfg, ["model", "op", "width", "depth", "data"]))
        if model_part not in _MODELS_CHECKED:  # a sweep's seeds share a model: built once
            build_model(cfg, cfg.data.in_chans, cfg.data.num_classes)
            _MODELS_CHECKED.add(model_part)
    except (ValueError, TypeError) as e:  # the model's and check_positive_int's one-line errors (unknown op, ...)
        raise StarbenchError(str(e).splitlines()[0] if str(e) else type(e).__name__) from None


def run_identity(cfg: DictConfig) -> Dict[str, Any]:
    """What a checkpoint must match to be resumed (or exported) with this config."""
    return {"task": "classify", **model_identity(cfg), "data": cfg.data.name, "num_classes": cfg.data.num_classes,
            "in_chans": cfg.data.in_chans, "image_size": cfg.data.image_size}


def run(cfg: DictConfig, run_dir: Path) -> Dict[str, Any]:
    """One classification run, top to bottom: the config checked; this process's device and rank; the model; the
    machine prepared for it (threads, CPU kernels, allocator, optimizer step); the data; then training, recorded in
    ``run_dir`` (metrics.json, last.pt)."""
    tcfg, dcfg = cfg.trainer, cfg.data
    check_settings(cfg)
    device, dist_info = start_processes(resolve_device(tcfg.device), tcfg.batch_size)
    run_dir = Path(broadcast_object(str(run_dir), dist_info))  # all ranks share rank 0's run dir
    seed_everything(cfg.seed)
    identity = run_identity(cfg)
    model = build_model(cfg, dcfg.in_chans, dcfg.num_classes)  # bad op/width fails before data loads
    input_shape = (dcfg.in_chans, dcfg.image_size, dcfg.image_size)
    params, flops = count_params(model), count_flops(model, input_shape)  # PyTorch's ops, before the kernels
    channels_last = (cfg.model.name == "starnet") if tcfg.channels_last == "auto" else bool(tcfg.channels_last)
    model, machine = prepare_device(model, tcfg, device, dist_info, channels_last=channels_last,
                                    input_shape=input_shape, num_classes=dcfg.num_classes,
                                    saved_threads=saved_threads(run_dir) if tcfg.checkpoint else None)
    lr = peak_lr(tcfg)  # as given, or scaled with the global batch (trainer.lr_base_batch)
    data = build_data(dcfg, tcfg, cfg.seed, device, dist_info.rank, dist_info.world_size)
    info = {**identity, "seed": cfg.seed, "epochs": tcfg.epochs, "train_size": data.num_train, "params": params,
            "flops": flops, "device": str(device), "world_size": dist_info.world_size, "peak_lr": lr}
    log.info("%s%s %s op=%s width=%s depth=%s: %s params, %s FLOPs; %d train images on %s",
             f"[rank {dist_info.rank}/{dist_info.world_size}] " if dist_info.enabled else "",
             info["model"], info["variant"] or "", info["op"], info["width"], info["depth"],
             human_count(info["params"]), human_count(info["flops"]), data.num_train, device)
    with Tracker(cfg, run_dir, info, enabled=dist_info.is_main) as tracker:
        result = Trainer(tcfg, model, data, machine, tracker, identity).fit()
        log.info("done: top1 %.2f (best %.2f), %.0f train img/s, %.0f s training",
                 result["top1"], result["best_top1"], result["train_images_per_s"], result["train_time_s"])
        return tracker.finish(result)


TASK = TaskSpec("classify", run, check=check)
