"""Crash-proofing: a run killed at any moment resumes to exactly the metrics of an uninterrupted run."""
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, TINY
from experiments.entry import run_job
from experiments.errors import StarbenchError

# Long enough epochs (64 steps) that a signal lands mid-epoch; one thread, so runs are bit-identical.
LONG = (*TINY, "data.train_size=4096", "trainer.epochs=3", "trainer.threads=1", "data.augment=true",
        "model.drop_path=0.1")


# The process signals itself after a given optimizer step: a real signal, delivered at a known point whatever the
# machine's speed (waiting on the clock raced on fast machines, where an epoch of this tiny model takes ~0.1 s).
SIGNAL_AT_STEP = """
import os, runpy, signal, sys
from torch.optim.optimizer import register_optimizer_step_post_hook
sig, at = getattr(signal, sys.argv[1]), int(sys.argv[2])
steps = [0]
def hook(optimizer, args, kwargs):
    steps[0] += 1
    if steps[0] == at:
        os.kill(os.getpid(), sig)
register_optimizer_step_post_hook(hook)
sys.argv = ["run.py", *sys.argv[3:]]
runpy.run_path("run.py", run_name="__main__")
"""
STEPS_PER_EPOCH = 4096 // 64
MID_EPOCH_2 = STEPS_PER_EPOCH + 10  # step 10 of the second epoch


def run_signalled(run_dir: Path, sig: str, at_step: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SIGNAL_AT_STEP, sig, str(at_step), *LONG, f"hydra.run.dir={run_dir}"],
                          cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=600)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("straight")
    subprocess.run([sys.executable, "run.py", *LONG, f"hydra.run.dir={run_dir}"], cwd=ROOT, check=True,
                   capture_output=True)
    return json.loads((run_dir / "metrics.json").read_text())


def same_result(a, b):
    assert [r["train_loss"] for r in a["history"]] == [r["train_loss"] for r in b["history"]]
    assert (a["top1"], a["top5"]) == (b["top1"], b["top5"])


@pytest.mark.parametrize("sig,exit_code", [("SIGTERM", 143), ("SIGINT", 130)])  # SLURM's stop; Ctrl-C
def test_signal_saves_mid_epoch_and_resume_is_exact(tmp_path, reference, sig, exit_code):
    proc = run_signalled(tmp_path, sig, MID_EPOCH_2)
    assert proc.returncode == exit_code, proc.stderr[-3000:]
    assert f"stopped by {sig} at epoch 2 step 10" in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "interrupted"
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    # saved mid-epoch, right after the step the signal arrived in, not at the last epoch boundary
    assert (ckpt["epoch"], ckpt["step_in_epoch"]) == (1, 10)
    assert f"end: stopped by {sig} at epoch 2 step 10" in (tmp_path / "run.log").read_text()
    subprocess.run([sys.executable, "run.py", *LONG, f"hydra.run.dir={tmp_path}"], cwd=ROOT, check=True,
                   capture_output=True)
    assert "last.pt at epoch 2 step 10" in (tmp_path / "run.log").read_text()  # one numbering: stopped, resumed
    resumed = json.loads((tmp_path / "metrics.json").read_text())
    assert resumed["status"] == "completed"
    same_result(resumed, reference)


def test_sigterm_stops_the_whole_sweep(tmp_path):
    proc = subprocess.run([sys.executable, "-c", SIGNAL_AT_STEP, "SIGTERM", "10", "-m", "op=star,sum", *LONG,
                           f"hydra.sweep.dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 143, proc.stderr[-3000:]
    statuses = {json.loads(p.read_text())["status"] for p in tmp_path.glob("*/metrics.json")}
    assert statuses == {"interrupted"}  # the first job, resumable; the second never started


# A terminal's Ctrl-C reaches every process of a sweep at once. Here the one job's process gets it while the job is
# still setting up (before the first step), just after another process of the sweep (the launcher, under joblib)
# marked the sweep stopped: as that process would, the hook writes the stop marker, then signals.
SIGINT_DURING_SETUP = """
import os, runpy, signal, sys
from pathlib import Path
import experiments.train.trainer as trainer
real = trainer.Trainer.maybe_resume
def maybe_resume(self):
    Path(os.environ["STARBENCH_SWEEP"].split(":", 1)[1]).write_text("SIGINT")
    os.kill(os.getpid(), signal.SIGINT)
    return real(self)
trainer.Trainer.maybe_resume = maybe_resume
sys.argv = ["run.py", *sys.argv[1:]]
runpy.run_path("run.py", run_name="__main__")
"""


def test_a_first_ctrl_c_during_set_up_stops_the_job_at_its_first_step_with_a_checkpoint(tmp_path):
    """Not "stopped at once by a second Ctrl-C" (the marker another process wrote is not this one's first), and not
    ignored either (the job would train all its epochs): it checkpoints after one step and the sweep stops."""
    proc = subprocess.run([sys.executable, "-c", SIGINT_DURING_SETUP, "-m", "op=star,sum", *LONG,
                           f"hydra.sweep.dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 130, proc.stderr[-3000:]
    assert "second Ctrl-C" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "stopped by SIGINT at epoch 1 step 1; checkpoint saved" in proc.stderr, proc.stderr[-3000:]
    (job,) = [p.parent for p in tmp_path.glob("*/metrics.json")]  # the second job never started
    assert json.loads((job / "metrics.json").read_text())["status"] == "interrupted"
    assert (job / "last.pt").exists()


def test_kill_9_then_rerun_is_exact(tmp_path, reference):
    proc = run_signalled(tmp_path, "SIGKILL", MID_EPOCH_2)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "running"
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
