"""``scripts/probe_dimension.py`` end to end on tiny DemoNets trained here (1 epoch, synthetic data, width 8),
and its one-line errors for dirs that are not trained DemoNet runs."""
import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT

TINY = ["data=synthetic", "trainer.epochs=1", "width=8", "depth=2", "data.train_size=128", "data.val_size=64",
        "trainer.batch_size=64", "logger=none"]


def env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def probe_in_process(capsys, *args):
    """main() of the script in this process (no interpreter start-up): (exit status, stderr lines)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("probe_dimension_script", ROOT / "scripts" / "probe_dimension.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    code = module.main([str(a) for a in args])
    return code, capsys.readouterr().err.strip().splitlines()


def probe(*args):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "probe_dimension.py"), *map(str, args)],
                          capture_output=True, text=True, env=env(), timeout=600, cwd=ROOT)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe_runs")
    dirs = []
    for op in ("star", "sum"):
        run_dir = root / op
        subprocess.run([sys.executable, "run.py", *TINY, f"op={op}", f"hydra.run.dir={run_dir}"], cwd=ROOT,
                       env=env(), check=True, capture_output=True, timeout=600)
        dirs.append(run_dir)
    return dirs


def test_probe_end_to_end(runs, tmp_path):
    out = tmp_path / "out"
    proc = probe(*runs, "--out", out, "--images", 16, "--probe-train", 64, "--probe-test", 32, "--threads", 1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "width 8, depth 2: effective rank star" in proc.stdout
    result = json.loads((out / "probe_dimension.json").read_text())
    assert "star" in result["prediction"] and "sec. 3" in result["prediction"]
    assert "small width" not in result["prediction"]   # sec. 3 does not predict where the lead is largest
    assert [r["op"] for r in result["runs"]] == ["star", "sum"]
    data = yaml.safe_load((runs[0] / ".hydra" / "config.yaml").read_text())["data"]
    tokens_per_image = (data["image_size"] // data["patch_size"]) ** 2
    for run in result["runs"]:
        p = run["probe"]
        assert p["images"] == 16 and p["tokens"] == 16 * tokens_per_image   # every token of every image
        assert [b["block"] for b in p["blocks"]] == [0, 1]
        for b in p["blocks"]:
            assert b["hidden_dim"] == 24 and 1.0 <= b["effective_rank"] <= 24
            assert 1 <= b["energy_90"] <= b["energy_99"] <= b["numerical_rank"] <= 24
            assert 0.0 <= b["probe_top1"] <= 100.0
    assert {(g["op"], g["width"], g["seeds"] == [0]) for g in result["groups"]} == {("star", 8, True), ("sum", 8, True)}
    assert (out / "probe_dimension.png").stat().st_size > 10_000


def test_probe_result_outlives_the_checkpoint(runs, tmp_path, capsys):
    """Each run's probe.json stands in for its checkpoint in a copy of the records (metrics.json, .hydra/), for the
    same settings only; --recompute and other settings need the checkpoint again."""
    import shutil
    settings = ["--images", 16, "--probe-train", 64, "--probe-test", 32, "--threads", 1]
    assert probe_in_process(capsys, *runs, "--out", tmp_path / "first", *settings)[0] == 0
    saved = json.loads((runs[0] / "probe.json").read_text())
    assert saved["settings"] == {"images": 16, "probe_train": 64, "probe_test": 32}
    assert saved["config_hash"] == json.loads((runs[0] / "metrics.json").read_text())["config_hash"]
    records = []
    for run_dir in runs:  # what a committed sweep keeps: no last.pt
        copy = tmp_path / "records" / run_dir.name
        shutil.copytree(run_dir / ".hydra", copy / ".hydra")
        for name in ("metrics.json", "probe.json"):
            shutil.copy(run_dir / name, copy / name)
        records.append(copy)
    code, err = probe_in_process(capsys, *records, "--out", tmp_path / "again", *settings)
    assert code == 0 and err == [f"reused {r}/probe.json (measured with these settings)" for r in records]
    first, again = (json.loads((tmp_path / d / "probe_dimension.json").read_text()) for d in ("first", "again"))
    assert again["groups"] == first["groups"]
    assert [r["run_dir"] for r in again["runs"]] == list(map(str, records))
    code, err = probe_in_process(capsys, *records, "--out", tmp_path / "other", "--images", 8)
    assert (code, err) == (1, [f"probe_dimension: error: {records[0]} has no last.pt (not trained yet?) "
                               "and no probe.json measured with these settings"])
    assert probe_in_process(capsys, *records, "--out", tmp_path / "forced", *settings, "--recompute")[0] == 1
    # a probe.json of another configuration is stale: the run is probed again from its checkpoint
    stale = {**saved, "config_hash": "0" * 12}
    (runs[0] / "probe.json").write_text(json.dumps(stale))
    code, err = probe_in_process(capsys, runs[0], "--out", tmp_path / "fresh", *settings)
    assert code == 0 and err == [f"probed {runs[0]}"]
    assert json.loads((runs[0] / "probe.json").read_text())["config_hash"] == saved["config_hash"]


def test_probe_rejects_what_is_not_a_trained_demonet(runs, tmp_path, capsys):
    assert probe_in_process(capsys, tmp_path, "--out", tmp_path / "out") == (
        1, [f"probe_dimension: error: {tmp_path} is not a run dir (no .hydra/config.yaml)"])
    starnet = tmp_path / "starnet_run"
    (starnet / ".hydra").mkdir(parents=True)
    cfg = yaml.safe_load((runs[0] / ".hydra" / "config.yaml").read_text())
    cfg["model"]["name"] = "starnet"
    (starnet / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert probe_in_process(capsys, runs[0], starnet) == (   # every dir checked before anything is probed
        1, [f"probe_dimension: error: {starnet} is a starnet classify run; "
            "the probe covers DemoNet classification runs"])
    untrained = tmp_path / "untrained"
    (untrained / ".hydra").mkdir(parents=True)
    (untrained / ".hydra" / "config.yaml").write_text((runs[0] / ".hydra" / "config.yaml").read_text())
    assert probe_in_process(capsys, untrained) == (
        1, [f"probe_dimension: error: {untrained} has no last.pt (not trained yet?)"])
    assert probe_in_process(capsys, tmp_path / "nowhere") == (
        1, [f"probe_dimension: error: {tmp_path / 'nowhere'} does not exist"])
