"""The sweep's W&B summary run carries the pooled test, as summary.md does (read back from the offline run file)."""
import pytest

from experiments.analysis import aggregate, load_jobs, summarize
from tests.experiments.analysis.fake_sweeps import make_sweep
from tests.experiments.analysis.test_wandb_charts import OFFLINE, summary_run


def test_summary_run_holds_the_pooled_test(tmp_path):
    sweep = make_sweep(tmp_path / "sweeps" / "w", "classify")
    aggregate(sweep, wandb=OFFLINE)
    run, _ = summary_run(sweep)
    expected = summarize(load_jobs(sweep)).pooled
    summary = run["summary"]
    assert summary["summary/pooled_pairs"] == expected.n_pairs > 0
    assert summary["summary/pooled_gap"] == pytest.approx(expected.mean)
    assert summary["summary/p_improve"] == pytest.approx(expected.p_improve)
    assert summary["summary/pooled_wins"] == expected.wins


def test_summary_run_of_an_under_trained_sweep_carries_the_caveat(tmp_path):
    sweep = make_sweep(tmp_path / "sweeps" / "w", "classify", baseline=90.0)
    aggregate(sweep, wandb=OFFLINE)
    run, _ = summary_run(sweep)
    assert run["summary"]["summary/caveat"].startswith("Not evidence about the ops: under-trained. 12 of 12 runs")


def test_summary_run_of_a_sweep_without_caveat_says_none(tmp_path):
    sweep = make_sweep(tmp_path / "sweeps" / "w", "classify")  # no baseline: no trained-regime check
    aggregate(sweep, wandb=OFFLINE)
    run, _ = summary_run(sweep)
    assert run["summary"]["summary/caveat"] == ""
