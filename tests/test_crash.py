"""Crash-proofing: a run killed at any moment resumes to exactly the metrics of an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import ROOT, TINY
from experiments.entry import run_job
from experiments.errors import StarbenchError

# Long enough epochs (64 steps) that a signal lands mid-epoch; one thread, so runs are bit-identical.
LONG = (*TINY, "data.train_size=4096", "trainer.epochs=3", "trainer.threads=1", "data.augment=true",
        "model.drop_path=0.1")


def start(run_dir: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "run.py", *LONG, f"hydra.run.dir={run_dir}"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for_epoch(run_dir: Path, epoch: int, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if json.loads((run_dir / "metrics.json").read_text()).get("epoch", 0) >= epoch:
                time.sleep(0.3)  # into the next epoch
                return
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    raise TimeoutError


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("straight")
    subprocess.run([sys.executable, "run.py", *LONG, f"hydra.run.dir={run_dir}"], cwd=ROOT, check=True,
                   capture_output=True)
    return json.loads((run_dir / "metrics.json").read_text())


def same_result(a, b):
    assert [r["train_loss"] for r in a["history"]] == [r["train_loss"] for r in b["history"]]
    assert (a["top1"], a["top5"]) == (b["top1"], b["top5"])


def test_sigterm_saves_mid_epoch_and_resume_is_exact(tmp_path, reference):
    proc = start(tmp_path)
    wait_for_epoch(tmp_path, 1, proc)
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=120)
    stderr = proc.stderr.read()
    assert code == 143, stderr[-3000:]
    assert "stopped by SIGTERM" in stderr, stderr[-3000:]
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "interrupted"
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    # saved mid-epoch, not at the last boundary
    assert ckpt["epoch"] == 1 and ckpt["step_in_epoch"] > 0, (ckpt["epoch"], ckpt["step_in_epoch"])
    subprocess.run([sys.executable, "run.py", *LONG, f"hydra.run.dir={tmp_path}"], cwd=ROOT, check=True,
                   capture_output=True)
    resumed = json.loads((tmp_path / "metrics.json").read_text())
    assert resumed["status"] == "completed"
    same_result(resumed, reference)


def test_kill_9_then_rerun_is_exact(tmp_path, reference):
    proc = start(tmp_path)
    wait_for_epoch(tmp_path, 1, proc)
    proc.kill()
    proc.wait()
    (tmp_path / "last.pt.tmp").write_bytes(b"half-written checkpoint")  # as if killed during a save
    subprocess.run([sys.executable, "run.py", *LONG, f"hydra.run.dir={tmp_path}"], cwd=ROOT, check=True,
                   capture_output=True)
    same_result(json.loads((tmp_path / "metrics.json").read_text()), reference)


def test_nan_loss_fails_the_run_with_its_step(tiny_cfg, tmp_path, monkeypatch):
    real = torch.nn.CrossEntropyLoss.forward
    calls = {"n": 0}

    def nan_on_third_step(self, *args):
        calls["n"] += 1
        return real(self, *args) * (float("nan") if calls["n"] == 3 else 1.0)

    monkeypatch.setattr(torch.nn.CrossEntropyLoss, "forward", nan_on_third_step)
    with pytest.raises(StarbenchError, match="training loss is nan at epoch 1 step 3"):
        run_job(tiny_cfg(), tmp_path)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["status"] == "failed" and "epoch 1 step 3" in saved["error"]
