import os
import stat

import pytest

from experiments.errors import StarbenchError
from experiments.records import atomic_write_text, one_line, read_metrics


def test_atomic_write_replaces_whole_file_with_a_normal_mode(tmp_path):
    path = tmp_path / "metrics.json"
    atomic_write_text(path, "old")
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temp file left
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask  # readable by collaborators, as other outputs


def test_one_line_names_bugs_but_not_bad_input():
    assert one_line(ValueError("width must be\n a positive integer")) == "width must be a positive integer"
    assert one_line(ZeroDivisionError("division by zero")) == "ZeroDivisionError: division by zero"


def _no_temp_files(directory):
    return [p.name for p in directory.iterdir() if p.name.endswith(".tmp")] == []


def test_a_failed_write_removes_its_temp_file_and_keeps_the_old_file(tmp_path):
    import errno

    import pytest

    from experiments.errors import StarbenchError
    from experiments.records import atomic_write

    path = tmp_path / "last.pt"
    atomic_write_text(path, "good")

    def full_disk(f):
        f.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(StarbenchError, match=f"cannot write to {path}: No space left on device"):
        atomic_write(path, full_disk)
    assert path.read_text() == "good" and _no_temp_files(tmp_path)

    def bug(f):
        f.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # not a storage error: raised as it is, and cleaned up all the same
        atomic_write(path, bug)
    assert path.read_text() == "good" and _no_temp_files(tmp_path)


def test_a_full_tmpfs_leaves_no_temp_file(tmp_path):
    import subprocess

    import pytest
    import torch

    from experiments.errors import StarbenchError
    from experiments.records import atomic_write

    mount = tmp_path / "full"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if proc.returncode:
        pytest.skip(f"cannot mount a 200 kB tmpfs here ({proc.stderr.strip() or proc.returncode}): needs root "
                    "or CAP_SYS_ADMIN; the injected-error test covers the same code")
    try:
        path = mount / "last.pt"
        atomic_write(path, lambda f: torch.save({"w": torch.zeros(10)}, f))  # a small good checkpoint fits
        with pytest.raises(StarbenchError, match="No space left on device"):
            atomic_write(path, lambda f: torch.save({"w": torch.zeros(100_000)}, f))  # 400 kB does not
        assert _no_temp_files(mount), list(mount.iterdir())
        assert torch.load(path, weights_only=True)["w"].shape == (10,)  # the last good one still loads
        atomic_write_text(mount / "metrics.json", "{}")  # the space is free again: nothing held by a temp file
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_read_metrics_says_what_is_wrong_with_a_record_only_when_strict(tmp_path):
    assert read_metrics(tmp_path) is None and read_metrics(tmp_path, strict=True) is None  # no record yet
    (tmp_path / "metrics.json").write_text('{"status": "completed"}')
    assert read_metrics(tmp_path, strict=True) == {"status": "completed"}
    for content, problem in (("{not json", "Expecting property name"), ("[]", "a JSON list, not a record")):
        (tmp_path / "metrics.json").write_text(content)
        assert read_metrics(tmp_path) is None
        with pytest.raises(StarbenchError, match=problem):
            read_metrics(tmp_path, strict=True)
