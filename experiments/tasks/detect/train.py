"""``task=detect``: train and evaluate a StarNet-YOLOv8 detector with ultralytics as the engine."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, Optional

from omegaconf import DictConfig, OmegaConf

from starnet.ops import check_positive_int

from ...config import plain
from ...errors import StarbenchError
from ...records import Tracker, config_hash, read_metrics
from ...train.device import resolve_device
from ...train.models import count_flops, count_params, model_identity
from .env import set_threads, thread_callbacks
from .datasets import check_dataset, resolve_data
from .model import allow_safe_load, detector_config, tap_channels, write_config
from .yolo_callbacks import TrainClock, tracker_callbacks

log = logging.getLogger("starbench")

# Task settings passed to ultralytics' train() under the same name.
TRAIN_KEYS = ("epochs", "imgsz", "batch", "optimizer", "lr0", "lrf", "momentum", "weight_decay", "warmup_epochs",
              "warmup_bias_lr", "cos_lr", "close_mosaic", "patience", "amp", "deterministic", "cache", "plots",
              "workers")


def ultralytics_device(device) -> str:
    """``task.device`` as ultralytics takes it: ``auto`` -> CUDA device ``0`` if there is one, else ``cpu``;
    anything else (``cpu``, ``0``, ``0,1``) as given."""
    if device in (None, "auto"):
        return "0" if resolve_device("auto").type == "cuda" else "cpu"
    return str(device)


def load_yolo(weights, threads: Optional[int] = None):
    """``ultralytics.YOLO`` with our thread fix attached (ultralytics resets threads to cpu_count - 1)."""
    from ultralytics import YOLO
    model = YOLO(str(weights), task="detect")
    for event, fn in thread_callbacks(threads).items():
        model.add_callback(event, fn)
    return model


def evaluate(weights, data_yaml, imgsz: int, batch: int, device: str = "cpu", threads: Optional[int] = None,
             save_dir: Optional[Path] = None) -> Dict[str, float]:
    """mAP (%) of a checkpoint on the data's val split. Fixed batch: ``rect`` val batches pad per batch, so
    the batch size changes the numbers slightly; the same call in any process gives the same mAP."""
    set_threads(threads)
    model = load_yolo(weights, threads)
    kw = {"project": str(Path(save_dir).parent), "name": Path(save_dir).name, "exist_ok": True} if save_dir else {}
    res = model.val(data=str(data_yaml), imgsz=imgsz, batch=batch, device=device, plots=False, verbose=False,
                    split="val", **kw)
    # Percent, like classification's top1 (ultralytics reports fractions).
    return {"map50": 100 * float(res.box.map50), "map50_95": 100 * float(res.box.map),
            "precision": 100 * float(res.box.mp), "recall": 100 * float(res.box.mr)}


def _check_model(cfg: DictConfig) -> None:
    from starnet.ops import check_op
    if cfg.model.name != "starnet":
        raise StarbenchError(f"task=detect needs a backbone with stage outputs: model=starnet, not model={cfg.model.name}")
    tap_channels(cfg.model.variant, cfg.width)  # unknown variant -> StarbenchError
    ops = plain(cfg.op)
    for op in [ops] if isinstance(ops, str) else ops:
        try:
            check_op(op)  # a name, a preset or an import path (imported here, before any data is made)
        except ValueError as e:
            raise StarbenchError(str(e)) from None
    allow_safe_load()  # again: an op imported by its path just now is a fusion function a checkpoint names too


def check_imgsz(imgsz) -> int:
    """The detector's input side: ultralytics would round it up to the stride, but the FLOP count (and a
    comparison at the stated size) need it exact."""
    ok = isinstance(imgsz, int) and not isinstance(imgsz, bool) and imgsz > 0 and imgsz % 32 == 0
    if not ok:
        raise StarbenchError(f"task.imgsz must be a positive multiple of 32 (the detector's largest stride), "
                             f"got {imgsz}")
    return imgsz


def _warn_ignored_overrides() -> None:
    """The detector trains with ultralytics' recipe from ``task.*``: say so when the command line set
    ``trainer.*`` (the classification recipe), instead of ignoring it silently."""
    from hydra.core.hydra_config import HydraConfig
    if not HydraConfig.initialized():
        return
    ignored = [o for o in HydraConfig.get().overrides.task if o.lstrip("+~").startswith("trainer")]
    if ignored:
        log.warning("task=detect ignores %s: the detector's recipe is task.* (e.g. task.epochs, task.batch; "
                    "see docs/detection.md)", " ".join(ignored))


def _load_checkpoint(path: Path, threads: Optional[int]):
    """ultralytics' YOLO on a resume checkpoint; a damaged file is a one-line error, not ultralytics' hint
    to download a model."""
    try:
        return load_yolo(path, threads)
    except Exception as e:
        raise StarbenchError(f"checkpoint {path} is corrupt or unreadable ({type(e).__name__}); "
                             "delete it to start this run afresh") from None


def train_args(cfg: DictConfig, data_yaml: Path, run_dir: Path, device: str) -> Dict[str, Any]:
    t = cfg.task
    args = {k: plain(t[k]) for k in TRAIN_KEYS if k in t}
    args.update(data=str(data_yaml), seed=int(cfg.seed), device=device, project=str(run_dir), name="yolo",
                exist_ok=True, pretrained=False, val=True, verbose=True)
    extra = t.get("args")
    if extra:  # free-form extras
        args.update(OmegaConf.to_container(extra, resolve=True) if OmegaConf.is_config(extra) else dict(extra))
    if str(args.get("optimizer")).lower() == "auto":
        log.warning("task.optimizer=auto lets ultralytics choose optimizer and lr0 per run: not a pinned comparison")
    return args


def _same_unfinished_run(cfg: DictConfig, run_dir: Path) -> bool:
    """An interrupted run of this very config (ultralytics resumes it from last.pt)."""
    previous = read_metrics(run_dir)
    if not previous or previous.get("status") == "completed" or not previous.get("history"):
        return False
    return previous.get("config_hash") == config_hash(cfg)


def run(cfg: DictConfig, run_dir) -> Dict[str, Any]:
    from ultralytics.utils.torch_utils import get_flops

    run_dir = Path(run_dir).resolve()
    t = cfg.task
    _check_model(cfg)
    check_imgsz(plain(t.imgsz))
    _warn_ignored_overrides()
    threads = set_threads(t.threads)
    device = ultralytics_device(t.device)
    data_yaml, data_name = resolve_data(cfg.data)
    # data=yolo's train_size / val_size (debug=fast sets them): a fixed subset, listed in the run dir
    sizes = {"train": cfg.data.get("train_size"), "val": cfg.data.get("val_size")} if cfg.data.name == "yolo" else None
    for split, size in (sizes or {}).items():
        if size is not None:
            check_positive_int(f"data.{split}_size", size)
    data = check_dataset(data_yaml, bool(cfg.data.get("allow_background", False)), sizes, run_dir / "data_subset")
    data_yaml = data["yaml"]
    ident = model_identity(cfg)
    model_cfg = detector_config(cfg.model.variant, ident["op"], cfg.model.act, nc=data["nc"], scale=t.scale,
                                width=cfg.width, depths=ident["depth"] if cfg.depth is not None else None,
                                in_chans=int(data.get("channels", 3)), drop_path=float(cfg.model.drop_path),
                                init=cfg.model.init)
    model_yaml = write_config(run_dir / f"starnet_{cfg.model.variant}_yolov8{t.scale}.yaml", model_cfg)
    info = {"task": "detect", **ident, "seed": cfg.seed, "data": data_name, "epochs": t.epochs,
            "imgsz": t.imgsz, "yolo_scale": t.scale, "data_yaml": str(data_yaml), "model_yaml": str(model_yaml),
            "data_stats": data["stats"], "threads": threads, "device": device, "top1": None, "best_top1": None}
    last = run_dir / "yolo" / "weights" / "last.pt"
    resume = last.is_file() and _same_unfinished_run(cfg, run_dir)
    tracker = Tracker(cfg, run_dir, info)
    try:
        model = _load_checkpoint(last, threads) if resume else load_yolo(model_yaml, threads)
        tracker.update(params=count_params(model.model), gflops=round(get_flops(model.model, t.imgsz), 3),
                       flops=count_flops(model.model, (int(data.get("channels", 3)), t.imgsz, t.imgsz)))
        rec = tracker.record
        variant = f" {rec['variant']}" if rec.get("variant") else ""
        log.info("%s%s op=%s width=%s depth=%s yolov8%s: %.3fM params, %.2f GFLOPs at %d px; data %s "
                 "(%s train / %s val images), %d epochs on %s", rec["model"], variant, rec["op"], rec["width"],
                 rec["depth"], t.scale, rec["params"] / 1e6, rec["gflops"], t.imgsz, data_name,
                 data["stats"]["train"]["images"], data["stats"]["val"]["images"], t.epochs, device)
        # On resume the Tracker kept the interrupted run's history: its train time is added to this one's.
        clock = TrainClock(tracker.record["history"] if resume else [])
        for event, fn in tracker_callbacks(tracker, clock).items():
            model.add_callback(event, fn)
        clock.begin()
        if resume:
            log.info("resuming detector training from %s", last)
            model.train(resume=True)
        else:
            model.train(**train_args(cfg, data_yaml, run_dir, device))
        train_time = clock.total()
        best = run_dir / "yolo" / "weights" / "best.pt"
        if not best.is_file():
            raise StarbenchError(f"training ended without a checkpoint in {best.parent}")
        final = evaluate(best, data_yaml, t.imgsz, t.val_batch, device, threads, save_dir=run_dir / "val")
        log.info("done: mAP50 %.2f  mAP50-95 %.2f  precision %.2f  recall %.2f (best.pt, val split); "
                 "%.0f s training", final["map50"], final["map50_95"], final["precision"], final["recall"], train_time)
        return tracker.finish({**final, "best_checkpoint": str(best), "train_time_s": round(train_time, 1),
                               "val_args": {"imgsz": t.imgsz, "batch": t.val_batch, "split": "val"}})
    except Exception as e:
        tracker.fail(" ".join(str(e).split()) or type(e).__name__)
        raise
