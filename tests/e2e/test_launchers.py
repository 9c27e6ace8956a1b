"""Sweeps through Hydra launchers: submitit's local executor stands in for SLURM here."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, load_run_py

TINY_SWEEP = ("data=synthetic", "width=8", "depth=2", "trainer.epochs=1", "trainer.batch_size=64",
              "data.train_size=256", "data.val_size=128", "logger=none", "trainer.threads=1")


def test_submitit_sweep_runs_each_job_as_two_ddp_ranks(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    subprocess.run([sys.executable, "run.py", "-m", "hydra/launcher=submitit_local",
                    "hydra.launcher.tasks_per_node=2", "hydra.launcher.timeout_min=5", *TINY_SWEEP, "op=star,sum",
                    f"hydra.sweep.dir={tmp_path}"], cwd=ROOT, check=True, capture_output=True, timeout=400)
    records = [json.loads(p.read_text()) for p in tmp_path.glob("*/metrics.json")]
    assert sorted(r["op"] for r in records) == ["star", "sum"]
    assert all(r["status"] == "completed" and r["world_size"] == 2 for r in records)


def test_missing_launcher_plugin_names_the_extra(monkeypatch, capsys):
    import importlib.util

    run = load_run_py()
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("hydra_plugins") else real(name, *a))
    with pytest.raises(SystemExit) as exit_info:
        run.check_launcher(["-m", "hydra/launcher=slurm", "op=star,sum"])
    assert "needs the 'slurm' extra" in str(exit_info.value.code)
    run.check_launcher(["op=star"])  # no launcher asked for: nothing to check


def test_ctrl_c_under_joblib_is_what_it_is_under_the_basic_launcher(tmp_path):
    """Ctrl-C reaches the launcher and its worker processes (the terminal signals the process group): each running
    job checkpoints mid-epoch and says so in one line, queued jobs do not start, no traceback, exit 130."""
    sweep = tmp_path / "sweep"
    args = [sys.executable, "run.py", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *TINY_SWEEP,
            "data.train_size=8192", "trainer.epochs=200", "op=star,sum", "seed=0,1", f"hydra.sweep.dir={sweep}"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, "OMP_NUM_THREADS": "1"})

    def training() -> int:  # jobs past their first epoch: 200 epochs (~1 min on a fast machine) end long after
        return sum(" epoch 1/200 " in log.read_text() for log in sweep.glob("*/run.log"))

    start = time.monotonic()
    while training() < 2 and time.monotonic() - start < 300:  # both workers training (a clock would race: a
        time.sleep(0.2)                                       # machine that trains fast finishes short jobs first)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = stderr.strip().splitlines()
    # Mid-epoch, in whichever epoch each job had reached (how far depends on the machine's speed).
    assert sum(re.search(r"stopped by SIGINT at epoch \d+ step \d+; checkpoint saved", line) is not None
               for line in lines) == 2, stderr
    assert lines[-1].startswith("starbench: sweep stopped by SIGINT; rerun the same command to resume it"), stderr
    jobs = sorted(p.parent for p in sweep.glob("*/metrics.json"))
    assert len(jobs) == 2  # the two queued jobs never started
    for job in jobs:
        record = json.loads((job / "metrics.json").read_text())
        assert record["status"] == "interrupted" and "checkpoint saved" in record["error"]
        assert (job / "last.pt").exists() and "end: stopped by SIGINT" in (job / "run.log").read_text()
    assert not list(sweep.glob(".stopped-*"))  # the launcher's stop marker is gone


def test_joblib_jobs_name_themselves_in_their_end_lines(tmp_path):
    """The workers' lines interleave on one console: each job's end line (and a failed job's error line) names it."""
    proc = subprocess.run([sys.executable, "run.py", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                           *TINY_SWEEP, "op=star,tests.e2e.failing_op:explode", f"hydra.sweep.dir={tmp_path}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=400,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 1, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    star = next(p.name for p in tmp_path.iterdir() if "op=star" in p.name)  # the job's dir: its overrides
    failing = next(p.name for p in tmp_path.iterdir() if "failing_op" in p.name)
    assert f"end: completed (job {star})" in out, out[-3000:]
    assert re.search(rf"starbench: error: .*this op fails on purpose.* \(job {re.escape(failing)}\)", out), out[-3000:]
    assert f"end: completed (job {star})" in (tmp_path / star / "run.log").read_text()
