"""Real multiruns through run.py (tiny models on synthetic data): the sweep summary, a failing job,
a relaunch that reruns nothing, and one W&B group whose runs rebuild the same table."""
import csv
import os
import subprocess
import sys

from tests.conftest import ROOT, write_fashion_mnist
from experiments.records import sweep_group

TINY = ["data=synthetic", "trainer.epochs=1", "width=8", "depth=2", "data.train_size=128", "data.val_size=64"]
SUMMARY = ("summary.csv", "summary.md", "star_vs_sum.png")
FAILING_OP = "tests.e2e.failing_op:explode"


def multirun(sweep_dir, *overrides, logger="none", exit_code=0):
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    proc = subprocess.run([sys.executable, "run.py", "-m", *TINY, f"logger={logger}", *overrides,
                           f"hydra.sweep.dir={sweep_dir}"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == exit_code, proc.stderr[-3000:]
    return proc


def test_sweep_summary_failure_and_relaunch(tmp_path):
    sweep = tmp_path / "sweep"
    # A job that fails at run time (a bad value would be refused before the first job: test_hydra_callbacks.py)
    proc = multirun(sweep, f"op=star,sum,{FAILING_OP}", "seed=0,1", exit_code=1)
    assert "starbench: error: 2 of 6 jobs did not complete" in proc.stderr
    for name in SUMMARY:
        assert (sweep / name).exists(), f"no {name}: is experiments.hydra_callbacks.SweepSummary in hydra.callbacks?"
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert len(rows) == 6
    failed = [r for r in rows if r["status"] != "completed"]
    assert [(r["op"], r["status"]) for r in failed] == [(FAILING_OP, "failed")] * 2
    assert "this op fails on purpose" in failed[0]["error"]
    md = (sweep / "summary.md").read_text()
    assert "## Jobs not completed" in md and "this op fails on purpose" in md
    assert "| all |" in md  # star and sum paired over both seeds

    completed = sorted(p for p in sweep.glob("*/metrics.json") if "failing_op" not in str(p))
    before = {p: (p.stat().st_mtime_ns, p.read_text()) for p in completed}
    multirun(sweep, f"op=star,sum,{FAILING_OP}", "seed=0,1", exit_code=1)  # relaunch into the same dir
    assert {p: (p.stat().st_mtime_ns, p.read_text()) for p in completed} == before
    assert len(list(csv.DictReader((sweep / "summary.csv").open()))) == 6


def test_wandb_group_and_compare_agree(tmp_path):
    from experiments.analysis.wandb_runs import read_run_file
    sweep = tmp_path / "sweeps" / "wb"
    multirun(sweep, "op=star,sum", "seed=0,1", "width=8,12", logger="wandb")
    runs = [read_run_file(p) for p in sweep.rglob("run-*.wandb")]
    assert sorted(r["job_type"] for r in runs) == [""] * 8 + ["summary"]
    # Jobs take their group from experiments.records.current_sweep_group (see records.Tracker).
    assert {r["group"] for r in runs} == {sweep_group(sweep)} == {"sweeps_wb"}
    out = tmp_path / "compare"
    subprocess.run([sys.executable, "scripts/compare.py", "--local", str(sweep), "--out", str(out)],
                   cwd=ROOT, check=True, capture_output=True)
    local = (sweep / "summary.md").read_text().split("\n", 3)[3]  # past the title and source lines
    rebuilt = (out / "summary.md").read_text().split("\n", 3)[3]
    assert rebuilt == local
    assert "| 8 |" in local and "| 12 |" in local


def test_a_smoke_preset_runs_and_says_it_is_not_evidence(tmp_path):
    """budget_curve_smoke through run.py, on synthetic data (tests make their own data): 8 jobs, a summary
    with the pooled test, and the budget-curve figure."""
    sweep = tmp_path / "smoke"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    proc = subprocess.run([sys.executable, "run.py", "experiment=budget_curve_smoke", "data=synthetic",
                           "data.train_size=128", "data.val_size=64", "depth=2", "logger=none",
                           "hydra.launcher.n_jobs=1", f"hydra.sweep.dir={sweep}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert len(rows) == 8 and {r["status"] for r in rows} == {"completed"}
    md = (sweep / "summary.md").read_text()
    assert "## Pooled over all 4 pairs (2 rows)" in md and "Linear baseline" in md
    assert (sweep / "star_vs_sum.png").stat().st_size > 10_000


class FakeApiRun:
    """A W&B API run (``wandb.Api().runs(...)``'s items) made of what an offline run file holds."""

    def __init__(self, run):
        self.name, self.config, self.job_type = run["name"], run["config"], run["job_type"]
        self.state = "finished" if run["exit_code"] == 0 else "failed"
        self.summary = type("Summary", (), {"_json_dict": run["summary"]})()
        self._history = run["history"]

    def scan_history(self):
        return iter(self._history)


def test_every_route_writes_the_same_summary(tmp_path, monkeypatch):
    """The callback at a sweep's end, scripts/aggregate.py, scripts/compare.py from the local W&B files and from the
    W&B API give one summary.md (the source line apart): the linear baseline (Fashion-MNIST from a data.root the W&B
    config holds but the knobs leave out) and the trained-regime check (from the runs' per-epoch history) included."""
    import wandb

    from experiments.analysis.wandb_runs import read_run_file
    from tests.scripts.test_scripts import load_script
    compare = load_script("compare.py")
    fm = write_fashion_mnist(tmp_path / "fm")
    sweep = tmp_path / "sweeps" / "routes"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    proc = subprocess.run([sys.executable, "run.py", "-m", "op=star,sum", "seed=0,1", "width=8", "depth=2",
                           "trainer.epochs=2", f"data.root={fm}", "trainer.threads=1", "logger=wandb",
                           f"hydra.sweep.dir={sweep}"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]

    def body(path):
        return path.read_text().split("\n", 3)[3]  # past the title and source lines
    callback = body(sweep / "summary.md")
    assert "Linear baseline" in callback and "## Trained-regime check" in callback
    assert "gained less than 0.3 points in their last epoch" in callback  # two epochs: the gain is measured
    subprocess.run([sys.executable, "scripts/aggregate.py", str(sweep), "--no-wandb"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    assert body(sweep / "summary.md") == callback
    proc = subprocess.run([sys.executable, "scripts/compare.py", "--local", str(sweep), "--out", str(tmp_path / "l")],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0 and "baseline" not in proc.stderr, proc.stderr
    assert body(tmp_path / "l" / "summary.md") == callback
    runs = [read_run_file(p) for p in sweep.rglob("run-*.wandb")]
    monkeypatch.setattr(wandb, "Api", lambda: type("Api", (), {"runs": lambda self, path, filters: [
        FakeApiRun(r) for r in runs if r["group"] == filters["group"]]})())
    assert compare.main(["--project", "me/starbench", "--sweep", str(sweep), "--out", str(tmp_path / "api")]) == 0
    assert body(tmp_path / "api" / "summary.md") == callback
