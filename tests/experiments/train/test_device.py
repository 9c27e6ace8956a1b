"""The process a run computes in (``experiments.train.device``): device names, and DDP on CPU (gloo, 2 processes
through torchrun) against one process with the same global batch."""
import json
import subprocess
import sys

import pytest
import torch

from experiments.errors import StarbenchError
from experiments.train.device import resolve_device
from tests.conftest import ROOT


def test_auto_and_cpu():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("name,message", [
    ("tpu", "unknown trainer.device 'tpu'; use auto, cpu, cuda or cuda:N"),
    ("meta", "trainer.device=meta: starbench runs on cpu or cuda"),  # torch knows it; training there cannot work
])
def test_names_that_are_not_a_training_device(name, message):
    with pytest.raises(StarbenchError, match=message):
        resolve_device(name)


def test_a_cuda_device_this_machine_does_not_have(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(StarbenchError, match="no CUDA device; use auto or cpu"):
        resolve_device("cuda", key="--device")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(StarbenchError, match=r"cuda:7 but this machine has 2 CUDA device\(s\) \(cuda:0 to cuda:1\)"):
        resolve_device("cuda:7")


ARGS = ("data=synthetic", "width=8", "depth=2", "trainer.epochs=2", "trainer.batch_size=64", "data.train_size=512",
        "data.val_size=256", "logger=none", "trainer.threads=1", "data.augment=true")


def test_two_process_ddp_matches_single_process(tmp_path):
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    subprocess.run([*torchrun, "run.py", *ARGS, f"hydra.run.dir={tmp_path}/ddp"], cwd=ROOT, check=True,
                   capture_output=True, timeout=300)
    subprocess.run([sys.executable, "run.py", *ARGS, f"hydra.run.dir={tmp_path}/single"], cwd=ROOT, check=True,
                   capture_output=True, timeout=300)
    ddp = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    single = json.loads((tmp_path / "single" / "metrics.json").read_text())
    assert ddp["status"] == "completed" and ddp["world_size"] == 2
    # Same batches, same augmentation, gradients averaged over ranks: only the order of float
    # additions differs (all-reduce vs one matmul), so losses agree to ~1e-6 and accuracies exactly
    # on this small set.
    for a, b in zip(ddp["history"], single["history"]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["top1"] == pytest.approx(b["top1"], abs=0.5)
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == [".hydra", "last.pt", "metrics.json", "owner.lock", "run.log"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp", "single"]  # no per-rank run dirs


def test_global_batch_must_split_evenly(tmp_path):
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    proc = subprocess.run([*torchrun, "run.py", *ARGS, "trainer.batch_size=63", f"hydra.run.dir={tmp_path}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "not divisible by the 2 processes" in proc.stderr
