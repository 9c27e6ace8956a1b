"""ultralytics trainer callbacks (``experiments.tasks.detect.yolo_callbacks``)."""
from experiments.tasks.detect.yolo_callbacks import previous_train_time


def test_resumed_train_time_adds_the_kept_epochs():
    history = [{"epoch": 1, "epoch_time_s": 2.0, "train_time_s": 2.5}, {"epoch": 2, "epoch_time_s": 3.0,
                                                                        "train_time_s": 5.5},
               {"epoch": 3, "epoch_time_s": 1.0, "train_time_s": 6.5}]
    assert previous_train_time(history, 0) == 0.0  # fresh run
    assert previous_train_time(history, 2) == 5.5  # epoch 3 is redone: its time is not counted
    assert previous_train_time([{k: v for k, v in r.items() if k != "train_time_s"} for r in history], 2) == 5.0
