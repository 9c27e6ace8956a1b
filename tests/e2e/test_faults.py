"""Faults through run.py, with real processes and real files (docs/failures.md lists each and what the user sees):
a run dir owned by another process, a refused rerun, a full disk, a run dir that cannot be one."""
import json
import os
import socket
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.experiments.records.test_lock import hold_in_another_process

FAST = ("data=synthetic", "width=8", "depth=2", "trainer.epochs=1", "trainer.batch_size=64", "data.train_size=128",
        "data.val_size=64", "logger=none", "trainer.threads=1")


def run_py(*args, timeout=600):
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "run.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def one_error_line(proc, message):
    assert proc.returncode == 1, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("starbench: error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return errors[0]


def test_a_run_dir_owned_by_another_process_is_refused_and_left_alone(tmp_path):
    run_dir = tmp_path / "run"
    owner = hold_in_another_process(run_dir)
    try:
        proc = run_py(*FAST, f"hydra.run.dir={run_dir}")
        line = one_error_line(proc, "is in use by")
        assert f"pid {owner.pid} on {socket.gethostname()}" in line
        # nothing of the refused run's: no metrics, no checkpoint, no .hydra (the owner's files are its own)
        assert not {"metrics.json", "last.pt", ".hydra"} & {p.name for p in run_dir.iterdir()}
    finally:
        owner.kill()
        owner.wait()


def test_a_refused_rerun_leaves_the_runs_config_untouched(tmp_path):
    run_dir = tmp_path / "run"
    assert run_py(*FAST, "op=star", f"hydra.run.dir={run_dir}").returncode == 0
    saved = {p.name: p.read_text() for p in (run_dir / ".hydra").iterdir()}
    assert set(saved) == {"config.yaml", "hydra.yaml", "overrides.yaml"} and "op: star" in saved["config.yaml"]
    metrics = (run_dir / "metrics.json").read_text()
    proc = run_py(*FAST, "op=sum", f"hydra.run.dir={run_dir}")
    one_error_line(proc, "holds a completed run of another configuration")
    assert {p.name: p.read_text() for p in (run_dir / ".hydra").iterdir()} == saved
    assert (run_dir / "metrics.json").read_text() == metrics
    log = (run_dir / "run.log").read_text()
    assert "end: completed" in log and "end: error:" in log and "another configuration" in log


def job_dir_name(*overrides):
    """Hydra's ``override_dirname`` of a sweep job (conf/hydra/starbench.yaml leaves out logger and threads)."""
    return ",".join(sorted(o for o in overrides if o.split("=")[0] not in ("logger", "trainer.threads")))


def test_a_sweep_skips_a_job_running_elsewhere_and_counts_it(tmp_path):
    sweep = tmp_path / "sweep"
    star, sum_ = job_dir_name(*FAST, "op=star"), job_dir_name(*FAST, "op=sum")
    owner = hold_in_another_process(sweep / sum_)
    try:
        proc = run_py("-m", *FAST, "op=star,sum", f"hydra.sweep.dir={sweep}")
    finally:
        owner.kill()
        owner.wait()
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert f"starbench: {sum_}: running elsewhere (pid {owner.pid} on" in proc.stderr and "skipped" in proc.stderr
    assert "1 of 2 jobs did not complete (1 still running elsewhere)" in proc.stderr, proc.stderr[-3000:]
    md = (sweep / "summary.md").read_text()
    assert "1 completed, 1 running elsewhere" in md and f"running elsewhere: pid {owner.pid}" in md
    assert json.loads((sweep / star / "metrics.json").read_text())["status"] == "completed"
    assert not (sweep / sum_ / "metrics.json").exists()


def test_two_sweeps_on_one_dir_run_every_job_exactly_once(tmp_path):
    sweep = tmp_path / "sweep"
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "run.py", "-m", *FAST, "data.train_size=1024", "op=star,sum", "seed=0,1",
            f"hydra.sweep.dir={sweep}"]
    procs = [subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    errs = [p.communicate(timeout=900)[1] for p in procs]
    jobs = sorted(p.parent for p in sweep.glob("*/metrics.json"))
    assert len(jobs) == 4
    for job in jobs:
        assert json.loads((job / "metrics.json").read_text())["status"] == "completed"
        trained = (job / "run.log").read_text().count("done: top1")
        assert trained == 1, (job, trained, errs)
    assert 0 in [p.returncode for p in procs], errs  # the last to finish sees every job completed


def test_a_full_disk_is_one_line_and_leaves_no_temp_file(tmp_path):
    mount = tmp_path / "full"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount)], capture_output=True,
                             text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a 200 kB tmpfs here ({mounted.stderr.strip() or mounted.returncode}): needs root "
                    "or CAP_SYS_ADMIN (tests/experiments/records/test_files.py injects the error instead)")
    try:
        proc = run_py(*FAST, "width=16", "depth=4", f"hydra.run.dir={mount}/run")
        one_error_line(proc, f"cannot write to {mount}/run/last.pt: No space left on device")
        assert not [p for p in mount.rglob("*") if p.name.endswith(".tmp")]
        assert json.loads((mount / "run" / "metrics.json").read_text())["status"] == "failed"
        assert "end: error: cannot write to" in (mount / "run" / "run.log").read_text()
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def _read_only_dir(tmp_path):
    """A directory this process cannot write: chmod where that binds (not root), else a read-only tmpfs."""
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() != 0:
        ro.chmod(0o555)
        return ro, lambda: ro.chmod(0o755)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)], capture_output=True,
                             text=True)
    if mounted.returncode:
        pytest.skip(f"root ignores file modes and no read-only tmpfs can be mounted here ({mounted.stderr.strip()})")
    return ro, lambda: subprocess.run(["umount", str(ro)], check=True)


@pytest.mark.parametrize("case", ["file", "unwritable", "foreign"])
def test_a_run_dir_that_cannot_be_one_is_one_line_before_training(tmp_path, case):
    if case == "file":
        target = tmp_path / "a_file"
        target.write_text("not a dir")
        message, cleanup = "exists and is not a directory", lambda: None
    elif case == "foreign":  # a folder of the user's own files, named by mistake: not filled with a run's
        target = tmp_path / "Downloads"
        for name in ("paper.pdf", "notes.txt", "b.csv", "c.csv"):
            (target / name).parent.mkdir(exist_ok=True)
            (target / name).write_text(name)
        message, cleanup = f"(run dir) {target} holds other files (b.csv, c.csv, notes.txt and 1 more) and no " \
                           "starbench run; choose a new or empty dir", lambda: None
    else:
        ro, cleanup = _read_only_dir(tmp_path)
        target, message = ro / "run", "is not writable"
    try:
        proc = run_py(*FAST, f"hydra.run.dir={target}", timeout=300)
        one_error_line(proc, message)
        assert "epoch" not in proc.stdout and "params" not in proc.stdout  # before any training
        if case == "file":
            assert target.read_text() == "not a dir"
        if case == "foreign":
            assert sorted(p.name for p in target.iterdir()) == ["b.csv", "c.csv", "notes.txt", "paper.pdf"]
    finally:
        cleanup()
