import os
import stat

from experiments.records import atomic_write_text, one_line


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
