"""scripts/benchmark_sweep.py at a toy size: two whole sweeps through run.py (one per side), their table, the
JSON and the cleanup; and its one-line argument errors. Not its speed (docs/performance.md has the numbers)."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "benchmark_sweep.py"


def env_with_tmp(tmp):
    """TMPDIR=tmp. torch makes its compile cache dir under TMPDIR on importing torch._dynamo (torch's, not the
    script's temp files): it goes beside tmp, so that tmp holds only what the script leaves behind."""
    return {**os.environ, "TMPDIR": str(tmp), "TORCHINDUCTOR_CACHE_DIR": str(tmp.parent / "torchinductor")}


def run_script(*args, tmp=None):
    env = None
    if tmp is not None:  # the script's temp sweep dirs land in tmp, where the test can see they are gone
        env = env_with_tmp(tmp)
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=900, cwd=ROOT, env=env)


def test_toy_sweep_both_sides_table_json_and_cleanup(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    out_json = tmp_path / "sweep.json"
    proc = run_script("--widths", 8, "--ops", "star,sum", "--seeds", 0, "--depth", 1, "--train-size", 256,
                      "--val-size", 64, "--repeats", 1, "--data", "synthetic", "--no-warmup", "--json", out_json,
                      tmp=scratch)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "2 jobs per sweep" in out
    assert "round 1/1 before:" in out and "round 1/1 after:" in out
    assert "whole command: best/best" in out and "until the last job (without the sweep summary): best/best" in out
    for job in ("w8 star s0", "w8 sum s0"):
        assert job in out
    payload = json.loads(out_json.read_text())
    assert payload["settings"]["jobs_per_sweep"] == 2 and payload["settings"]["data"] == "synthetic"
    assert payload["sides"] == {"before": "trainer.fast_paths=false", "after": "(defaults)"}
    for side in ("before", "after"):
        assert len(payload["wall_s"][side]) == 1 and payload["wall_s"][side][0] > 0
        assert 0 < payload["jobs_done_s"][side][0] <= payload["wall_s"][side][0]
        assert set(payload["train_images_per_s"][side]) == {"w8 star s0", "w8 sum s0"}
    assert len(payload["speedup_per_round"]) == len(payload["speedup_jobs_done_per_round"]) == 1
    assert payload["speedup_best"] == pytest.approx(payload["best_wall_s"]["before"] / payload["best_wall_s"]["after"])
    assert "run.py -m width=8 op=star,sum seed=0 depth=1 model.patch_size=4" in payload["command"]
    assert "hydra/launcher=joblib" in payload["command"] and "trainer.threads=1" in payload["command"]
    assert not list(scratch.iterdir())  # temp sweep dirs removed


@pytest.mark.parametrize("args, message", [
    (["--widths", "0"], "argument --widths: expected an integer >= 1, got 0"),
    (["--widths", ","], "argument --widths: expected a comma-separated list"),
    (["--ops", "star,max"], "argument --ops: unknown op(s) max"),
    (["--seeds", "-1"], "argument --seeds: expected an integer >= 0"),
    (["--repeats", "0"], "argument --repeats: expected an integer >= 1"),
    (["--data", "mnist"], "argument --data: invalid choice"),
    (["--patch", "3"], "argument --patch: 28x28 images need a patch size dividing 28"),
    (["--json", "/nonexistent_dir_xyz/out.json"], "argument --json: directory /nonexistent_dir_xyz does not exist"),
])
def test_bad_arguments_are_one_line_errors(args, message, capsys):
    spec = importlib.util.spec_from_file_location("benchmark_sweep", SCRIPT)  # in this process: no sweep starts
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with pytest.raises(SystemExit) as exit_:
        mod.main(args)
    assert exit_.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("benchmark_sweep.py: error: ") and message in last, last


def test_a_failing_sweep_is_an_error_with_its_output(tmp_path):
    """A sweep that fails (here: run.py refuses a key) ends the benchmark with exit 1 and the sweep's last
    lines, and leaves no temp dir."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    code = ("import importlib.util as u, sys; s = u.spec_from_file_location('b', sys.argv[1]); "
            "m = u.module_from_spec(s); s.loader.exec_module(m); m.SIDES['before'] = ['trainer.no_such_key=1']; "
            "sys.exit(m.main(sys.argv[2:]))")
    proc = subprocess.run([sys.executable, "-c", code, str(SCRIPT), "--widths", "8", "--ops", "star", "--seeds", "0",
                           "--depth", "1", "--train-size", "64", "--repeats", "1", "--data", "synthetic",
                           "--no-warmup"], capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env=env_with_tmp(scratch))
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "benchmark_sweep.py: error: the sweep failed" in proc.stderr
    assert "no_such_key" in proc.stderr
    assert not list(scratch.iterdir())
