"""scripts/kernel_bitcheck.py: the comparison of two sides' builds and outputs (the builds themselves take minutes a
kernel, so the sides here are made by hand), and its one-line errors."""
import json
import shutil

import pytest
import torch

from tests.scripts.test_scripts import load_script, run_script

pytestmark = pytest.mark.skipif(shutil.which("objdump") is None or shutil.which("git") is None,
                                reason="needs objdump and git")


def write_side(root, label, binary, outputs):
    side = root / label
    side.mkdir(parents=True)
    (side / "built.json").write_text(json.dumps({"dwconv": binary}))
    torch.save({"dwconv": outputs}, side / "outputs.pt")


@pytest.mark.parametrize("same", [True, False])
def test_compares_each_kernels_machine_code_and_outputs(tmp_path, monkeypatch, capsys, same):
    binary = shutil.which("true")  # any ELF file with a .text section
    write_side(tmp_path, "old", binary, [torch.ones(3)])
    write_side(tmp_path, "new", binary, [torch.ones(3) if same else torch.zeros(3)])
    mod = load_script("kernel_bitcheck.py")
    monkeypatch.setattr("sys.argv", ["kernel_bitcheck.py", "HEAD", "--keep", str(tmp_path)])
    assert mod.main() == (0 if same else 1)
    out = capsys.readouterr().out
    assert "dwconv: .text identical" in out and "the whole .so byte for byte" in out
    assert ("every kernel the same" in out) == same and ("outputs DIFFER" in out) != same


def test_an_unknown_revision_is_one_line():
    proc = run_script("kernel_bitcheck.py", "no-such-rev", check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: no-such-rev")
