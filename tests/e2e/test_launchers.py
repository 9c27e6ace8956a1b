"""Sweeps through Hydra launchers: submitit's local executor stands in for SLURM here."""
import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, load_run_py

TINY_SWEEP = ("data=synthetic", "width=8", "depth=2", "trainer.epochs=1", "trainer.batch_size=64",
              "data.train_size=256", "data.val_size=128", "logger=none", "trainer.threads=1")


def test_submitit_sweep_runs_each_job_as_two_ddp_ranks(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    subprocess.run([sys.executable, "run.py", "-m", "hydra/launcher=submitit_local",
                    "hydra.launcher.tasks_per_node=2", "hydra.launcher.timeout_min=5", *TINY_SWEEP, "op=star,sum",
                    f"hydra.sweep.dir={tmp_path}"], cwd=ROOT, check=True, capture_output=True, timeout=400)
    records = [json.loads(p.read_text()) for p in tmp_path.glob("*/metrics.json")]
    assert sorted(r["op"] for r in records) == ["star", "sum"]
    assert all(r["status"] == "completed" and r["world_size"] == 2 for r in records)


def test_missing_launcher_plugin_names_the_extra(monkeypatch, capsys):
    import importlib.util

    run = load_run_py()
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("hydra_plugins") else real(name, *a))
    with pytest.raises(SystemExit) as exit_info:
        run.check_launcher(["-m", "hydra/launcher=slurm", "op=star,sum"])
    assert "needs the 'slurm' extra" in str(exit_info.value.code)
    run.check_launcher(["op=star"])  # no launcher asked for: nothing to check
