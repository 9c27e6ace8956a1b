"""Task ``detect``: YOLOv8 detectors with StarNet backbones, trained by ultralytics (``task=detect``).

Light on purpose: ultralytics is an optional extra and slow to import, so it loads when a detector is
built or trained (``env`` first, which points it at offline, project-local settings). Outside the task,
``import experiments.tasks.detect.model`` registers the backbone with ultralytics (model YAMLs, checkpoints).
"""
from ..base import TaskSpec
from .report import sweep_report


def run(cfg, run_dir):
    from .train import run as train  # imports ultralytics
    return train(cfg, run_dir)


TASK = TaskSpec("detect", run, sweep_report)
