"""The old import path ``experiments.detect`` keeps working where something outside the code names it:
pickled ultralytics checkpoints, generated model YAMLs ("import experiments.detect; YOLO(...)") and the
documented ``python -m`` commands."""
import io
import subprocess
import sys

import pytest
import torch

import experiments.detect as old
from experiments.tasks.detect import model as new
from tests.conftest import ROOT


def _pickled_under_the_old_path(obj) -> bytes:
    """``obj`` saved as a checkpoint written before the move names it: ``experiments.detect.model.<class>``."""
    cls = type(obj)
    moved = cls.__module__
    cls.__module__ = "experiments.detect.model"
    try:
        buf = io.BytesIO()
        torch.save({"model": obj}, buf)
    finally:
        cls.__module__ = moved
    return buf.getvalue()


@pytest.mark.parametrize("weights_only", [False, True])  # True: ULTRALYTICS_SAFE_LOAD=1's torch loading
def test_backbone_pickled_under_the_old_path_loads(weights_only):
    backbone = new.StarNetBackbone("s050", "sum").eval()
    data = _pickled_under_the_old_path(backbone)
    assert b"experiments.detect.model" in data and b"experiments.tasks.detect" not in data
    # torch's own module classes are allowed by ultralytics when it loads; ours (under both paths) on import.
    torch_classes = {type(m) for m in backbone.modules()
                     if not type(m).__module__.startswith(("experiments", "starnet"))}
    with torch.serialization.safe_globals(sorted(torch_classes, key=str)):
        loaded = torch.load(io.BytesIO(data), weights_only=weights_only)["model"]
    assert type(loaded) is new.StarNetBackbone and loaded.op == "sum"
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(loaded(x), backbone(x)))


def test_old_package_registers_the_backbone_with_ultralytics():
    import ultralytics.nn.tasks as yolo_tasks
    assert old.StarNetBackbone is new.StarNetBackbone is yolo_tasks.StarNetBackbone
    from experiments.detect.model import StarNetBackbone
    assert StarNetBackbone is new.StarNetBackbone


@pytest.mark.parametrize("module, phrase", [("experiments.detect.model", "StarNet-YOLOv8 model YAML"),
                                            ("experiments.detect.fashion_det", "Fashion-MNIST detection set")])
def test_documented_module_commands_run(module, phrase):
    proc = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert phrase in proc.stdout
