"""An op of the user's own, by import path on the command line (op=module:function), without editing starbench:
one run and a sweep through run.py record it by its path; a bad path is one line and exit 1."""
import csv
import json
import os
import subprocess
import sys

from tests.conftest import ROOT

# One thread and the plain path: no thread probe and no torch.compile of the user's op (tests/starnet/kernels/
# test_accelerate.py covers ops without a kernel on the fast paths), which took minutes on busy cores.
TINY = ["data=synthetic", "trainer.epochs=1", "width=8", "depth=2", "data.train_size=128", "data.val_size=64",
        "logger=none", "trainer.threads=1", "trainer.fast_paths=false"]
OP = "zoo_e2e.fusion:tanh_star"


def run_py(tmp_path, *args):
    pkg = tmp_path / "src" / "zoo_e2e"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "fusion.py").write_text("import torch\n\n\ndef tanh_star(a, b):\n    return a * torch.tanh(b)\n")
    path = os.pathsep.join(p for p in (str(tmp_path / "src"), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    return subprocess.run([sys.executable, "run.py", *args, *TINY], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def test_an_op_by_import_path_runs_and_is_recorded_by_its_path(tmp_path):
    proc = run_py(tmp_path, f"op={OP}", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == "completed" and record["op"] == OP

    sweep = tmp_path / "sweep"  # with sum, 3 seeds: the summary pairs it by seed under its path
    proc = run_py(tmp_path, "-m", f"op=sum,{OP}", "seed=0,1,2", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert {r["op"] for r in rows} == {OP, "sum"} and {r["status"] for r in rows} == {"completed"}
    assert rows[0]["pooled_pairs"] == "3"  # two ops: one pooled test, its columns unsuffixed
    md = (sweep / "summary.md").read_text()
    assert md.startswith(f"# {OP} vs sum:") and f"| sum | {OP} | gap {OP} − sum" in md
    assert (sweep / "star_vs_sum.png").stat().st_size > 10_000


def test_a_bad_import_path_is_one_line_and_exit_1(tmp_path):
    for op, message in ((f"zoo_e2e.nope:tanh_star", "cannot import module 'zoo_e2e.nope' (ModuleNotFoundError"),
                        ("zoo_e2e.fusion:nothere", "module 'zoo_e2e.fusion' has no 'nothere'")):
        proc = run_py(tmp_path, f"op={op}", f"hydra.run.dir={tmp_path / op.replace(':', '_')}")
        assert proc.returncode == 1
        errors = [line for line in proc.stderr.splitlines() if line.startswith("starbench: error:")]
        assert len(errors) == 1 and f"op '{op}': {message}" in errors[0], proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr
