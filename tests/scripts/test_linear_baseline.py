"""scripts/linear_baseline.py: the protocol's linear baseline for a data config, at an L2 grid."""
import json
import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = str(ROOT / "scripts" / "linear_baseline.py")


def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_fits_each_l2_and_matches_the_sweeps_baseline(tmp_path):
    out = tmp_path / "grid.json"
    r = run("data=synthetic", "data.train_size=300", "data.val_size=200", "data.noise=3", "--l2", "1e-2", "10", "--json", str(out))
    assert r.returncode == 0, r.stderr
    grid = json.loads(out.read_text())
    assert set(grid) == {"0.01", "10"} and all(0 <= v <= 100 for v in grid.values())
    assert grid["0.01"] != grid["10"]  # a heavy penalty changes the fit: the L2 reaches the fit
    # The sweep's own baseline (experiments/analysis/baseline.py) on the same data config at its L2.
    from hydra import compose, initialize_config_dir
    from experiments.analysis.baseline import linear_baseline
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["data=synthetic", "data.train_size=300", "data.val_size=200", "data.noise=3"])
    assert abs(linear_baseline(cfg.data) - grid["0.01"]) < 1e-9
    assert not list(tmp_path.glob("*.tmp*"))


def test_bad_input_is_one_line():
    for args in (["data.nope=1"], ["--l2", "-1"], ["data.train_size=999999999"]):
        r = run(*args)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (args, r.stderr)
        assert r.stderr.strip().splitlines()[-1].startswith("linear_baseline.py: error:"), r.stderr
