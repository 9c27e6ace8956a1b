"""ultralytics trainer callbacks that feed our Tracker (metrics.json + W&B) once per epoch."""
from __future__ import annotations

from typing import Any, Dict

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


def tracker_callbacks(tracker) -> Dict[str, Any]:
    def on_fit_epoch_end(trainer):
        # final_eval() fires this once more (epoch = epochs) for best.pt: run() records that itself.
        if trainer.epoch < trainer.epochs:
            tracker.log_epoch(epoch_row(trainer))
    return {"on_fit_epoch_end": on_fit_epoch_end}
