"""Old import path of the detection task, kept on purpose (the code lives in ``experiments.tasks.detect``
and ``experiments.data.fashion_det``):

- ultralytics checkpoints (``<run>/yolo/weights/*.pt``) saved before the move pickle the backbone as
  ``experiments.detect.model.StarNetBackbone``: unpickling imports that path (``model.py`` here);
- generated model YAMLs and docs say ``import experiments.detect; ultralytics.YOLO(...)``: importing this
  package still points ultralytics at offline, project-local settings and registers ``StarNetBackbone``;
- ``python -m experiments.detect.model`` and ``python -m experiments.detect.fashion_det`` are documented CLIs.

tests/experiments/tasks/detect/test_aliases.py checks all three. New code imports the new paths.
"""
from experiments.tasks.detect import env  # noqa: F401  (first: configures ultralytics before anything imports it)
from experiments.data.fashion_det import CLASSES, FashionDetSpec
from experiments.tasks.detect.model import StarNetBackbone, backbone_of, detector_config, write_config
from experiments.tasks.detect.report import sweep_report
from experiments.tasks.detect.train import evaluate, load_yolo, run

__all__ = ["run", "sweep_report", "evaluate", "load_yolo", "StarNetBackbone", "backbone_of", "detector_config",
           "write_config", "FashionDetSpec", "CLASSES"]
