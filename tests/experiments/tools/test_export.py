import subprocess
import sys

import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import ROOT
from demonet import DemoNet
from experiments.entry import run_job
from experiments.errors import StarbenchError
from experiments.tools.export import check_onnx, export_onnx, model_from_run
from starnet import VARIANTS, create_starnet

pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("op", ["star", "sum"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_starnet_onnx_matches_pytorch(variant, op, tmp_path):
    model = create_starnet(variant, op=op, num_classes=10).eval()
    shape = (3, 64, 64)
    path = export_onnx(model, tmp_path / "m.onnx", shape)
    assert check_onnx(path, model, shape, batch=3) < 1e-4  # dynamic batch: exported with 1, run with 3


@pytest.mark.parametrize("op", ["max", "gate", "concat", "swiglu"])
def test_the_op_zoo_exports_from_starnet(op, tmp_path):
    model = create_starnet("s050", op=op, num_classes=10).eval()
    path = export_onnx(model, tmp_path / "m.onnx", (3, 64, 64))
    assert check_onnx(path, model, (3, 64, 64)) < 1e-4


@pytest.mark.parametrize("op", ["star", "sum", "max", "gate", "concat", "swiglu"])  # concat: branches 37 + 36
def test_demonet_onnx_matches_pytorch(op, tmp_path):
    model = DemoNet(width=16, depth=2, op=op, num_classes=10, in_chans=1, patch_size=7).eval()
    for block in model.blocks:
        block.gamma.data.fill_(0.5)
    path = export_onnx(model, tmp_path / "m.onnx", (1, 28, 28))
    assert check_onnx(path, model, (1, 28, 28)) < 1e-4


def test_a_trained_run_exports_with_its_weights(tiny_cfg, tmp_path):
    cfg = tiny_cfg("trainer.ema=true")
    run_dir = tmp_path / "run"
    run_job(cfg, run_dir)
    (run_dir / ".hydra").mkdir()
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")  # as Hydra leaves it
    model, shape = model_from_run(run_dir)
    ckpt = torch.load(run_dir / "last.pt", weights_only=True)
    assert torch.equal(model.head.weight, ckpt["ema"]["module.head.weight"])  # the evaluated (EMA) weights
    out = tmp_path / "run.onnx"
    proc = subprocess.run([sys.executable, "scripts/export_onnx.py", "--run-dir", str(run_dir), "-o", str(out)],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout and out.is_file()


def test_an_interrupted_run_is_refused_without_the_flag(tiny_cfg, tmp_path, monkeypatch):
    from experiments.train.trainer import Trainer
    real_epoch = Trainer.train_epoch

    def stop_in_second_epoch(self):
        if self.epoch == 1:
            raise KeyboardInterrupt  # a Ctrl-C after one checkpointed epoch of two
        return real_epoch(self)

    monkeypatch.setattr(Trainer, "train_epoch", stop_in_second_epoch)
    cfg = tiny_cfg()
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_job(cfg, run_dir)
    (run_dir / ".hydra").mkdir()
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    out = tmp_path / "run.onnx"
    script = [sys.executable, "scripts/export_onnx.py", "--run-dir", str(run_dir), "-o", str(out)]
    proc = subprocess.run(script, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1 and not out.exists(), proc.stderr
    assert "is not a completed run (status interrupted; 1 of 2 epochs done)" in proc.stderr
    assert "--allow-unfinished" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([*script, "--allow-unfinished"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0 and out.is_file(), proc.stderr
    assert "export_onnx: warning: exporting an unfinished run (status interrupted; 1 of 2 epochs done)" in proc.stderr


def test_not_a_run_dir(tmp_path):
    with pytest.raises(StarbenchError, match="not a run dir"):
        model_from_run(tmp_path)


def test_no_spin_session_and_profile_agree_with_pytorch(tmp_path):
    import numpy as np
    from experiments.tools.export import ort_profile, ort_session
    model = create_starnet("s050", op="star", num_classes=10).eval()
    path = export_onnx(model, tmp_path / "m.onnx", (3, 32, 32))
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
    out = torch.from_numpy(ort_session(path, threads=1, spinning=False).run(None, {"images": x.numpy()})[0])
    assert ((out - ref).abs().max() / ref.abs().max()).item() < 1e-4
    prof = ort_profile(path, {"images": x.numpy()}, threads=1, calls=3, warmup=1,
                       group=lambda name: "mul" if "Mul" in name else "rest")
    # ORT folds the Clip (ReLU6) and the residual Add into its convs: 6 star Muls stay, no Clip, no Add
    assert prof["nodes"]["Mul"] == 6 and not {"Clip", "Add", "BatchNormalization"} & set(prof["nodes"])
    assert prof["run_us"] > 0 and prof["kernel_us"]["Mul"] > 0 and set(prof["group_us"]) == {"mul", "rest"}
    assert abs(sum(prof["kernel_us"].values()) - sum(prof["group_us"].values())) < 1e-6
