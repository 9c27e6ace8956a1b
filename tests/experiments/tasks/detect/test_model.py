"""The StarNet-YOLOv8 detector (``experiments.tasks.detect.model``): built for every variant and op, fused,
and written as a YAML that plain ultralytics loads."""
import pytest
import torch

from experiments.tasks.detect import env  # noqa: F401  (before ultralytics: it sets ultralytics' settings dir)
from experiments.errors import StarbenchError
from experiments.tasks.detect.model import TAPS, StarNetBackbone, backbone_of, detector_config, write_config
from starnet import VARIANTS
from ultralytics.nn.tasks import DetectionModel


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_detector_builds_for_each_variant_and_op(variant):
    params, strides = {}, {}
    for op in ("star", "sum"):
        model = DetectionModel(detector_config(variant, op, nc=10), ch=3, nc=10, verbose=False)
        bb = backbone_of(model)
        assert bb.op == op and bb.strides == [8, 16, 32]
        assert bb.channels == [bb.body.feature_info[i]["num_chs"] for i in TAPS]
        params[op] = sum(p.numel() for p in model.parameters())
        strides[op] = model.stride.tolist()
        with torch.no_grad():
            feats = bb(torch.zeros(1, 3, 64, 64))
        assert [f.shape[-1] for f in feats] == [8, 4, 2]
    assert strides["star"] == strides["sum"] == [8.0, 16.0, 32.0]
    assert params["star"] == params["sum"]  # the fair comparison: the op is the only difference


@pytest.mark.parametrize("op", ["star", "sum", ["sum", "sum", "star", "star"]])
def test_backbone_features_are_forward_intermediates(op):
    """The neck reads timm's stage outputs: bit for bit what ``forward_intermediates`` gives for stages 1-3, in
    training (batch statistics) and eval mode, with channels and strides from ``feature_info``."""
    torch.manual_seed(0)
    bb = StarNetBackbone("s050", op, drop_path=0.0)
    assert bb.strides == [8, 16, 32] and bb.channels == [32, 64, 128]
    x = torch.randn(2, 3, 96, 96)
    for training in (True, False):
        bb.train(training)
        with torch.no_grad():
            feats = bb(x)
            inter = bb.body.forward_intermediates(x, indices=list(TAPS), intermediates_only=True)
        assert len(feats) == len(inter) == 3 and all(torch.equal(a, b) for a, b in zip(feats, inter))
        assert [f.shape[1] for f in feats] == bb.channels and [96 // f.shape[-1] for f in feats] == bb.strides


def test_backbone_fuse_keeps_outputs():
    model = DetectionModel(detector_config("s050", "star", nc=10), ch=3, nc=10, verbose=False).eval()
    bb = backbone_of(model)
    for m in bb.modules():  # non-trivial BatchNorm statistics, so folding them is tested
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1), m.running_var.uniform_(0.5, 2), m.weight.data.uniform_(0.5, 2)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = bb(x)
        after = bb.fuse()(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in bb.modules())
    assert all(torch.allclose(a, b, atol=1e-4, rtol=1e-4) for a, b in zip(before, after))


def test_generated_yaml_works_in_plain_ultralytics(tmp_path):
    from ultralytics import YOLO
    path = write_config(tmp_path / "starnet_s050_sum_yolov8n.yaml", detector_config("s050", "sum", nc=3))
    model = YOLO(str(path))
    assert backbone_of(model.model).op == "sum" and model.model.yaml["nc"] == 3
    assert model.model.yaml["backbone"][0][3][:2] == ["s050", "sum"]  # what a checkpoint records
    with pytest.raises(StarbenchError, match="scale from the file name"):
        write_config(tmp_path / "plain.yaml", detector_config("s050", "sum", nc=3, scale="s"))


def test_the_op_zoo_and_an_op_by_import_path_build_the_detector(tmp_path, monkeypatch):
    """Every op of the zoo at star's size (within 1%: concat's branch widths), and an op by import path through
    the generated YAML, whose string arguments ultralytics passes through ast.literal_eval."""
    from ultralytics import YOLO
    from starnet import FUSION_OPS

    def build(op):
        model = DetectionModel(detector_config("s050", op, nc=10), ch=3, nc=10, verbose=False)
        with torch.no_grad():
            assert [f.shape[-1] for f in backbone_of(model)(torch.zeros(1, 3, 64, 64))] == [8, 4, 2]
        return backbone_of(model).op, sum(p.numel() for p in model.parameters())

    star = build("star")[1]
    for op in ("max", "gate", "concat", "bilinear", "swiglu"):
        name, count = build(op)
        assert name == op and abs(count - star) <= 0.01 * star, op
    (tmp_path / "det_user_ops.py").write_text("import torch\n\n\ndef tanh_star(a, b):\n    return a * torch.tanh(b)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    op = "det_user_ops:tanh_star"
    try:
        model = YOLO(str(write_config(tmp_path / "starnet_s050_user_yolov8n.yaml", detector_config("s050", op, nc=3))))
        assert backbone_of(model.model).op == op and model.model.yaml["backbone"][0][3][1] in (op, repr(op))
    finally:
        FUSION_OPS.pop(op, None)


def test_documented_command_writes_a_yaml_with_the_real_import(tmp_path):
    """docs/detection.md: ``python -m experiments.tasks.detect.model ... -o FILE``; the file says what to import."""
    import subprocess
    import sys
    from tests.conftest import ROOT
    out = tmp_path / "starnet_s050_sum_yolov8n.yaml"
    proc = subprocess.run([sys.executable, "-m", "experiments.tasks.detect.model", "--op", "sum", "--nc", "3",
                           "-o", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    header = out.read_text().splitlines()[:2]
    assert header[1] == "# Use: import experiments.tasks.detect.model; ultralytics.YOLO('<this file>')"
