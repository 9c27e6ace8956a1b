"""One owner per run dir: real processes hold and lose the lock (a kill -9 included), real files."""
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from experiments.records import LOCK_FILE, RunDirBusy, RunDirLock, holder
from experiments.errors import StarbenchError
from tests.conftest import ROOT

HOLD = """
import sys, time
from experiments.records import RunDirLock
lock = RunDirLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(600)
"""


def hold_in_another_process(run_dir):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_owner_is_refused_with_the_holders_name(tmp_path):
    proc = hold_in_another_process(tmp_path)
    try:
        with pytest.raises(RunDirBusy) as busy:
            RunDirLock(tmp_path).acquire()
        message = str(busy.value)
        assert f"pid {proc.pid} on {socket.gethostname()} (started 20" in message, message
        assert "choose another hydra.run.dir" in message
        assert holder(tmp_path) == busy.value.holder
    finally:
        proc.kill()
        proc.wait()


def test_a_lock_left_by_kill_9_never_blocks(tmp_path):
    proc = hold_in_another_process(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == proc.pid  # the dead owner's name is still there
    assert holder(tmp_path) is None                                            # but nobody holds the lock
    start = time.monotonic()
    with RunDirLock(tmp_path):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert time.monotonic() - start < 1.0
    assert (tmp_path / LOCK_FILE).read_text() == ""  # empty while free


def test_one_process_cannot_own_a_dir_twice(tmp_path):
    with RunDirLock(tmp_path):
        with pytest.raises(RunDirBusy, match=f"pid {os.getpid()}"):
            RunDirLock(tmp_path).acquire()
    with RunDirLock(tmp_path):  # released: free again
        pass


def test_file_systems_without_locks_run_unlocked_with_a_warning(tmp_path, monkeypatch, caplog):
    import fcntl

    def no_flock(fd, op):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    with caplog.at_level("WARNING", logger="starbench"), RunDirLock(tmp_path):
        pass
    assert "does not support file locks" in caplog.text


def test_a_run_dir_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(StarbenchError, match="exists and is not a directory"):
        RunDirLock(tmp_path / "file").acquire()
    with pytest.raises(StarbenchError, match="is not a directory"):
        RunDirLock(tmp_path / "file" / "run").acquire()
