"""The sweep's summary run logs native W&B charts of the star − sum gap over the swept axis
(``experiments.analysis.wandb_charts``), checked offline in the run file and its table files."""
import json
import time

import pytest

from experiments.analysis import aggregate, load_jobs, summarize
from experiments.analysis.wandb_charts import BY_OP_CHART, GAP_CHART, GAP_CI_CHART, table_key
from experiments.analysis.wandb_runs import read_run_file
from tests.experiments.analysis.fake_sweeps import make_sweep

OFFLINE = {"name": "wandb", "project": "starbench", "mode": "offline"}


def summary_run(sweep, wait_s=60):
    """The summary run's record, once its file is complete: measured here, a second offline run in one process
    can still be being written by wandb-core when ``run.finish()`` returns (the file held its 7-byte header)."""
    (path,) = [p for p in sweep.glob("wandb/offline-run-*/run-*.wandb")]
    deadline = time.monotonic() + wait_s
    while True:
        run = read_run_file(path)
        if run is not None and run["exit_code"] is not None or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert run is not None and run["exit_code"] == 0, f"{path} incomplete after {wait_s} s"
    assert run["job_type"] == "summary"
    return run, path.parent


def table_rows(run_dir, summary, key):
    entry = summary[table_key(key)]
    assert entry["_type"] == "table-file"
    data = json.loads((run_dir / "files" / entry["path"]).read_text())
    return data["columns"], data["data"]


def test_summary_run_logs_gap_charts_over_a_numeric_axis(tmp_path):
    sweep = make_sweep(tmp_path / "sweeps" / "w", "classify")
    aggregate(sweep, wandb=OFFLINE)
    run, run_dir = summary_run(sweep)
    charts = run["config"]["_wandb"]["visualize"]
    assert sorted(charts) == sorted([GAP_CHART, GAP_CI_CHART, BY_OP_CHART])
    bar = charts[GAP_CHART]["panel_config"]
    assert bar["panelDefId"] == "wandb/bar/v0" and bar["fieldSettings"] == {"label": "row", "value": "gap"}
    assert "star − sum gap in top1 by width" == bar["stringSettings"]["title"]
    for key in (GAP_CI_CHART, BY_OP_CHART):
        assert charts[key]["panel_config"]["panelDefId"] == "wandb/lineseries/v0"
        assert charts[key]["panel_config"]["stringSettings"]["xname"] == "width"

    gaps = {r.key[0]: r.gap for r in summarize(load_jobs(sweep)).rows}
    columns, rows = table_rows(run_dir, run["summary"], GAP_CHART)
    assert columns == ["row", "gap", "gap_lo", "gap_hi", "seeds"]
    assert [r[0] for r in rows] == ["16", "32"]
    for label, gap, lo, hi, n in rows:
        g = gaps[int(label)]
        assert gap == pytest.approx(2.0) and (lo, hi, n) == (pytest.approx(g.lo), pytest.approx(g.hi), 3)
    columns, rows = table_rows(run_dir, run["summary"], GAP_CI_CHART)
    assert sorted({r[columns.index("lineKey")] for r in rows}) == ["95% CI high", "95% CI low", "gap"]
    assert sorted({r[columns.index("step")] for r in rows}) == [16, 32]
    columns, rows = table_rows(run_dir, run["summary"], BY_OP_CHART)
    means = {(r[columns.index("lineKey")], r[columns.index("step")]): r[columns.index("lineVal")] for r in rows}
    assert means[("sum mean", 16)] == pytest.approx(60.5) and means[("star mean", 32)] == pytest.approx(67.5)
    # the tables and figure logged before stay
    assert {"summary/star_vs_sum", "summary/jobs", "summary/figure"} <= set(run["summary"])


def test_a_string_axis_gets_the_bar_chart_only(tmp_path):
    sweep = make_sweep(tmp_path / "sweeps" / "d", "detect")
    aggregate(sweep, wandb=OFFLINE)
    run, run_dir = summary_run(sweep)
    assert list(run["config"]["_wandb"]["visualize"]) == [GAP_CHART]
    _, rows = table_rows(run_dir, run["summary"], GAP_CHART)
    assert [r[0] for r in rows] == ["s050", "s100"] and all(r[1] == pytest.approx(2.0) for r in rows)
