"""Object detection with StarNet backbones: YOLOv8 detectors trained by ultralytics (``task=detect``).

``import experiments.detect`` first points ultralytics at a project-local, offline settings dir
(see ``env.py``), then registers ``StarNetBackbone`` so ultralytics can build and reload our
detectors: ``ultralytics.YOLO("<generated yaml>")`` or ``YOLO("<run>/yolo/weights/best.pt")``.
"""
from . import env  # noqa: F401  (first: configures ultralytics before anything imports it)
from .model import StarNetBackbone, backbone_of, detector_config, write_config
from .fashion_det import CLASSES, FashionDetSpec
from .report import sweep_report
from .train import evaluate, load_yolo, run

__all__ = ["run", "sweep_report", "evaluate", "load_yolo", "StarNetBackbone", "backbone_of", "detector_config", "write_config",
           "FashionDetSpec", "CLASSES"]
