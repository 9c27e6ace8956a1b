import json
import subprocess

import torch

from experiments.entry import run_job
from experiments.records import provenance as prov_module
from experiments.records.provenance import ROOT, run_provenance


def test_a_run_records_the_code_and_machine_it_ran_on(tiny_cfg, tmp_path):
    # The provenance is read once per process: clear it, or a commit made while a long suite runs (HEAD moved
    # since an earlier test's run) fails this test for nothing.
    run_provenance.cache_clear()
    run_job(tiny_cfg("trainer.epochs=1"), tmp_path)
    record = json.loads((tmp_path / "metrics.json").read_text())["provenance"]
    assert record["torch"] == torch.__version__ and record["python"] and record["cpu"]
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:  # a git checkout (CI's clean clone is one)
        assert record["git_commit"] == head.stdout.strip() and isinstance(record["git_dirty"], bool)


def test_outside_a_git_checkout_the_commit_is_none(tmp_path, monkeypatch):
    monkeypatch.setattr(prov_module, "ROOT", tmp_path)  # not a repository
    run_provenance.cache_clear()
    try:
        assert run_provenance()["git_commit"] is None and run_provenance()["git_dirty"] is None
    finally:
        run_provenance.cache_clear()
