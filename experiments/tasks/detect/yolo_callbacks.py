"""ultralytics trainer callbacks that feed our Tracker (metrics.json + W&B) once per epoch."""
from __future__ import annotations

import logging
import time
from typing import Any, Dict, List, Optional

log = logging.getLogger("starbench")

# ultralytics' metric names -> ours (the same names as the final metrics in metrics.json)
METRIC_KEYS = {"metrics/precision(B)": "precision", "metrics/recall(B)": "recall",
               "metrics/mAP50(B)": "map50", "metrics/mAP50-95(B)": "map50_95"}


def epoch_row(trainer) -> Dict[str, Any]:
    row: Dict[str, Any] = {"epoch": trainer.epoch + 1}
    if trainer.tloss is not None:
        row.update({k.replace("/", "_"): v for k, v in trainer.label_loss_items(trainer.tloss, "train").items()})
    for k, v in (trainer.metrics or {}).items():
        if k in METRIC_KEYS:  # percent, like the final metrics and classification's top1
            row[METRIC_KEYS[k]] = round(100 * float(v), 3)
        else:  # val/box_loss -> val_box_loss
            row[k.replace("/", "_")] = round(float(v), 5)
    if getattr(trainer, "lr", None):
        row["lr"] = float(trainer.lr.get("lr/pg0", 0.0))
    if trainer.epoch_time is not None:
        row["epoch_time_s"] = round(trainer.epoch_time, 2)
    return row


def previous_train_time(history: List[Dict[str, Any]], done_epochs: int) -> float:
    """Training seconds spent on the first ``done_epochs`` epochs of an interrupted run (0 for a fresh run):
    the cumulative ``train_time_s`` of its last kept row, else (older records) the sum of its epoch times."""
    rows = [r for r in history if 0 < r.get("epoch", 0) <= done_epochs]
    if not rows:
        return 0.0
    if isinstance(rows[-1].get("train_time_s"), (int, float)):
        return float(rows[-1]["train_time_s"])
    return float(sum(r.get("epoch_time_s") or 0.0 for r in rows))


def log_epoch_line(row: Dict[str, Any], epochs: int) -> None:
    losses = "  ".join(f"{k[len('train_'):]} {row[k]:.4f}" for k in ("train_box_loss", "train_cls_loss",
                                                                      "train_dfl_loss") if k in row)
    maps = "  ".join(f"{name} {row[k]:.2f}" for k, name in (("map50", "mAP50"), ("map50_95", "mAP50-95"))
                     if isinstance(row.get(k), (int, float)))
    extra = f"  {row['epoch_time_s']:.1f} s" if isinstance(row.get("epoch_time_s"), (int, float)) else ""
    log.info("epoch %d/%d  %s  %s%s", row["epoch"], epochs, losses, maps, extra)


class TrainClock:
    """Training seconds across resumes: those of the interrupted run's kept epochs plus this process's."""

    def __init__(self, history: List[Dict[str, Any]]):
        self.history = list(history)
        self.before = 0.0
        self.start: Optional[float] = None

    def on_train_start(self, trainer) -> None:
        # start_epoch: epochs already in last.pt (0 for a fresh run); later history rows are redone.
        self.before = previous_train_time(self.history, int(getattr(trainer, "start_epoch", 0) or 0))

    def begin(self) -> None:
        self.start = time.time()

    def total(self) -> float:
        return self.before + (time.time() - self.start if self.start is not None else 0.0)


def tracker_callbacks(tracker, clock: Optional[TrainClock] = None) -> Dict[str, Any]:
    def on_fit_epoch_end(trainer):
        # final_eval() fires this once more (epoch = epochs) for best.pt: run() records that itself.
        if trainer.epoch < trainer.epochs:
            row = epoch_row(trainer)
            if clock is not None:
                row["train_time_s"] = round(clock.total(), 1)  # cumulative: a resumed run continues from it
            tracker.log_epoch(row)
            log_epoch_line(row, trainer.epochs)
    events = {"on_fit_epoch_end": on_fit_epoch_end}
    if clock is not None:
        events["on_train_start"] = clock.on_train_start
    return events
