"""``scripts/wandb_report.py``: the dry run prints the report's structure as JSON without W&B (no login:
HOME is a fresh dir and no API key is set), bad input is a one-line error, saving without a login says so."""
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.experiments.analysis.fake_sweeps import make_sweep

pytest.importorskip("wandb_workspaces.reports.v2", reason="wandb-workspaces not installed (the [report] extra: "
                    "pip install -e '.[report]')")
SCRIPT = ROOT / "scripts" / "wandb_report.py"


def run(*args, home):
    env = {k: v for k, v in os.environ.items() if k != "WANDB_API_KEY"}
    env.update(HOME=str(home), WANDB_MODE="offline", WANDB_SILENT="true")
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          env=env, stdin=subprocess.DEVNULL, timeout=300)


@pytest.fixture
def sweep(tmp_path):
    return make_sweep(tmp_path / "sweeps" / "det", "detect", seeds=(0, 1))


def test_dry_run_prints_report_and_workspace_json(sweep, tmp_path):
    proc = run(sweep, "--project", "me/starbench", "--workspace", "--dry-run", home=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    report, workspace = out["report"], out["workspace"]
    assert (report["type"], report["entity"], report["project"]) == ("Report", "me", "starbench")
    grids = [b for b in report["blocks"] if b["type"] == "PanelGrid"]
    assert [g["runsets"][0]["groupby"] for g in grids] == [["config.model.variant", "config.op"], ["config.op"],
                                                          [], []]
    assert all("sweeps_det" in g["runsets"][0]["filters"] for g in grids)
    assert grids[0]["panels"][0]["metrics"] == ["summary.map50_95"]  # the detection metric, as aggregate
    assert workspace["type"] == "Workspace" and workspace["name"] == "starbench sweeps_det"


def test_bad_input_is_a_one_line_error(sweep, tmp_path):
    for args, message in [((sweep, "--project", "starbench"), "--project must be ENTITY/PROJECT"),
                          ((tmp_path / "nope", "--project", "me/p"), "does not exist"),
                          ((sweep,), "the following arguments are required: --project")]:
        proc = run(*args, home=tmp_path)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith("wandb_report.py: error: ") and message in last


def test_saving_without_a_login_says_so(sweep, tmp_path):
    proc = run(sweep, "--project", "me/starbench", home=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("wandb_report.py: error: saving a report needs a W&B login: run `wandb login`")
