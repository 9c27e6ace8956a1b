"""A sweep of three ops (sum, star, max) from hand-made job records: every op other than the reference gets its
paired gap, t interval, significance and pooled test against it, checked against scipy; the reference is an
option (``summarize(..., reference=...)``, ``scripts/aggregate.py --reference``)."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from experiments.analysis import aggregate, load_jobs, summarize
from experiments.analysis.figures import ops_of
from experiments.analysis.summary import compared_ops
from experiments.errors import StarbenchError
from tests.conftest import ROOT

# width -> op -> per-seed top1 (4 seeds)
RESULTS = {8: {"sum": [70.0, 71.0, 69.5, 72.0], "star": [73.0, 73.5, 72.0, 75.5], "max": [70.5, 70.0, 70.5, 72.5]},
           32: {"sum": [80.0, 81.0, 82.0, 80.5], "star": [80.5, 80.0, 83.5, 81.0], "max": [79.0, 80.5, 81.0, 79.5]}}


def write_job(sweep, **fields):
    job = sweep / ",".join(f"{k}={fields[k]}" for k in ("op", "seed", "width"))
    job.mkdir(parents=True)
    record = {"status": "completed", "error": None, "task": "classify", "model": "demonet", "variant": None,
              "act": "gelu", "depth": 4, "data": "fashion_mnist", "epochs": 2, "history": [], **fields}
    (job / "metrics.json").write_text(json.dumps(record))


@pytest.fixture
def sweep(tmp_path):
    root = tmp_path / "zoo"
    for width, ops in RESULTS.items():
        for op, accs in ops.items():
            for seed, acc in enumerate(accs):
                write_job(root, op=op, seed=seed, width=width, top1=acc)
    return root


def t_interval(diffs):
    d = np.asarray(diffs)
    lo, hi = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    return d.mean(), lo, hi


def test_every_op_gets_its_gap_against_sum(sweep):
    summary = summarize(load_jobs(sweep))
    assert summary.reference == "sum" and summary.ops == ["star", "max"] and summary.multi
    for row in summary.rows:
        for op in ("star", "max"):
            diffs = np.subtract(RESULTS[row.key[0]][op], RESULTS[row.key[0]]["sum"])
            mean, lo, hi = t_interval(diffs)
            gap = row.gap_of(op)
            assert gap.n == 4
            assert (gap.mean, gap.lo, gap.hi) == (pytest.approx(mean), pytest.approx(lo), pytest.approx(hi))
            assert gap.significant == (lo > 0 or hi < 0)
            # the same test as scipy's paired t test: the interval excludes 0 iff p < 0.05
            p_value = stats.ttest_rel(RESULTS[row.key[0]][op], RESULTS[row.key[0]]["sum"]).pvalue
            assert gap.significant == (p_value < 0.05)
    assert summary.rows[0].gap_of("star").significant is True   # width 8: star clearly above sum
    assert summary.rows[1].gap_of("max").significant is not None


def test_pooled_test_per_op(sweep):
    summary = summarize(load_jobs(sweep))
    for op in ("star", "max"):
        p = summary.pooled_of(op)
        diffs = np.concatenate([np.subtract(RESULTS[w][op], RESULTS[w]["sum"]) for w in RESULTS])
        assert p.n_pairs == 8 and p.n_strata == 2
        assert p.mean == pytest.approx(diffs.mean())
        assert p.wins == int((diffs > 0).sum()) and p.losses == int((diffs < 0).sum())
        assert p.wilcoxon_p == pytest.approx(stats.wilcoxon(diffs).pvalue)
        # stratified t: equal strata of 4, so var = sum over strata (1/2)^2 s_i^2 / 4
        strata = [np.subtract(RESULTS[w][op], RESULTS[w]["sum"]) for w in RESULTS]
        terms = [0.25 * s.var(ddof=1) / 4 for s in strata]
        df = sum(terms) ** 2 / sum(t ** 2 / 3 for t in terms)
        half = stats.t.ppf(0.975, df) * np.sqrt(sum(terms))
        assert (p.lo, p.hi) == (pytest.approx(diffs.mean() - half), pytest.approx(diffs.mean() + half))
    assert summary.pooled is summary.pooled_of("star")  # the first compared op's, computed once


def test_reference_option(sweep):
    summary = summarize(load_jobs(sweep), reference="max")
    assert summary.reference == "max" and summary.ops == ["star", "sum"]
    assert summary.title.startswith("Star, sum vs max: DemoNet")
    for row in summary.rows:
        w = row.key[0]
        mean, lo, hi = t_interval(np.subtract(RESULTS[w]["sum"], RESULTS[w]["max"]))
        gap = row.gap_of("sum")
        assert (gap.mean, gap.lo, gap.hi) == (pytest.approx(mean), pytest.approx(lo), pytest.approx(hi))
        assert row.gap_of("max").n == 4 and row.gap_of("max").mean == 0
    assert summary.pooled_of("sum").mean == pytest.approx(-summarize(load_jobs(sweep)).pooled_of("max").mean)
    with pytest.raises(StarbenchError, match="reference op 'gated' has no completed job.*max, star, sum"):
        summarize(load_jobs(sweep), reference="gated")


def test_compared_ops_order_and_lists():
    assert compared_ops({"sum", "star", "max", "gated"}) == ["star", "gated", "max"]
    assert compared_ops({"sum", ("sum", "star")}) == ["star"]   # a per-stage list is no compared op
    assert compared_ops({"star"}) == ["star"] and compared_ops({"sum"}) == ["star"]
    assert compared_ops({"star", "sum"}, reference="star") == ["sum"]


def test_summary_files_of_three_ops(sweep):
    aggregate(sweep, wandb=None)
    md = (sweep / "summary.md").read_text()
    assert md.startswith("# Star, max vs sum: DemoNet (depth 4) on fashion_mnist (2 epochs, 4 seeds)")
    assert "| width | op | top1 | gap op − sum [95% CI] | seeds | significant |" in md
    assert "| 8 | sum (reference) | 70.62 ± 1.11 | | | |" in md
    g = summarize(load_jobs(sweep)).rows[0].gap_of("max")
    assert f"| 8 | max | 70.88 ± 1.11 | {g.mean:+.2f} [{g.lo:+.2f}, {g.hi:+.2f}] | 4 | no |" in md
    assert "## Pooled over all (row, seed) pairs, each op against sum" in md
    assert "| star | 8 (2) |" in md and "| max | 8 (2) |" in md
    assert "no correction for its being one of 2 comparisons with sum" in md
    assert "| [97.50% CI] (Bonferroni, 2 comparisons) | significant (Bonferroni) |" in md
    assert "Other ops" not in md
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert len(rows) == 24 and {r["reference_op"] for r in rows} == {"sum"}
    summary = summarize(load_jobs(sweep))
    for op in ("star", "max"):
        assert float(rows[0][f"pooled_gap_{op}"]) == pytest.approx(summary.pooled_of(op).mean)
    assert "pooled_gap" not in rows[0]
    assert ops_of(summary) == ["sum", "star", "max"]


def test_plot_of_three_ops_is_a_forest_plot(sweep, tmp_path, monkeypatch):
    """One line per op across three panels (accuracy per row, gap per row, pooled gap), the reference at the bottom;
    the pooled panel draws each op's 95% and Bonferroni intervals and writes its numbers and n beside it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from experiments.analysis.figures import plot
    from experiments.analysis.pooled import bonferroni
    captured = {}
    monkeypatch.setattr(plt, "close", lambda fig: captured.setdefault("fig", fig))
    summary = summarize(load_jobs(sweep))
    plot(summary, tmp_path / "fig.png")
    acc, rows, forest = captured["fig"].axes[:3]
    assert [t.get_text() for t in acc.get_yticklabels()][-1] == "sum (reference)"
    assert {t.get_text() for t in acc.get_yticklabels()} == {"star", "max", "sum (reference)"}
    assert {t.get_text() for t in acc.get_legend().get_texts()} == {"width 8 (n = 4)", "width 32 (n = 4)"}
    assert "95% t CI" in acc.get_legend().get_title().get_text()
    assert "95% t CI of the paired gap" in rows.get_legend().get_title().get_text()
    legend = {t.get_text() for t in forest.get_legend().get_texts()}
    assert legend == {"97.50% CI (Bonferroni, 2 comparisons)", "95% stratified t CI"}
    written = {t.get_text() for t in forest.texts}
    for op in ("star", "max"):
        p = summary.pooled_of(op)
        assert f"{p.mean:+.2f} [{p.lo:+.2f}, {p.hi:+.2f}]  n = {p.n_pairs}, wins {p.wins}" in written
        lo, hi = bonferroni(p, 2)
        ends = {round(x, 6) for line in forest.collections for path in line.get_segments() for x in path[:, 0]}
        assert round(lo, 6) in ends and round(hi, 6) in ends   # the corrected interval is drawn
    assert forest.get_xlabel() == "op − sum (points), pooled"
    plt.close("all")


def test_aggregate_script_reference(sweep):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    run = lambda *a: subprocess.run([sys.executable, str(ROOT / "scripts" / "aggregate.py"), str(sweep),  # noqa: E731
                                     "--no-wandb", *a], capture_output=True, text=True, env=env, timeout=300)
    proc = run("--reference", "max")
    assert proc.returncode == 0, proc.stderr[-2000:]
    md = (sweep / "summary.md").read_text()
    assert "| 8 | max (reference) |" in md and "gap op − max" in md
    proc = run("--reference", "nope")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "aggregate: error: reference op 'nope' has no completed job in this sweep (its ops: max, star, sum)"]


def test_wandb_summary_run_of_three_ops(sweep):
    """The summary run's table has one line per (row, op), its charts every op's gap, its pooled fields per op."""
    from tests.experiments.analysis.test_wandb_charts import OFFLINE, summary_run, table_rows
    from experiments.analysis.wandb_charts import BY_OP_CHART, GAP_CHART, GAP_CI_CHART
    aggregate(sweep, wandb=OFFLINE)
    run, run_dir = summary_run(sweep)
    expected = summarize(load_jobs(sweep))
    for op in ("star", "max"):
        assert run["summary"][f"summary/pooled_gap_{op}"] == pytest.approx(expected.pooled_of(op).mean)
    assert run["summary"]["summary/reference_op"] == "sum"
    columns, rows = table_rows(run_dir, run["summary"], GAP_CHART)
    assert sorted(r[0] for r in rows) == ["32 · max", "32 · star", "8 · max", "8 · star"]
    columns, rows = table_rows(run_dir, run["summary"], GAP_CI_CHART)
    assert {r[columns.index("lineKey")] for r in rows} == {f"{op} − sum {k}" for op in ("star", "max")
                                                          for k in ("gap", "95% CI low", "95% CI high")}
    columns, rows = table_rows(run_dir, run["summary"], BY_OP_CHART)
    assert {r[columns.index("lineKey")] for r in rows} == {"sum mean", "star mean", "max mean"}


def test_a_summary_built_by_hand_takes_its_reference_to_the_rows():
    from experiments.analysis.summary import Row, Summary
    row = Row((8,), {"sum": {0: 1.0, 1: 2.0}, "max": {0: 3.0, 1: 3.0}, "star": {0: 2.0, 1: 4.0}})
    summary = Summary("top1", ["op", "seed"], ["width"], [row], "t", reference="max", ops=["star", "sum"])
    assert row.gap.mean == pytest.approx(0.0) and row.gap_of("sum").mean == pytest.approx(-1.5)
    assert summary.comparison == "star, sum vs max"


def test_bonferroni_interval_is_the_pooled_interval_at_the_corrected_level():
    """Widening the 95% interval by the t-quantile ratio equals computing it at 1 − 0.05/k outright."""
    from experiments.analysis.pooled import bonferroni, pooled
    pairs = {8: ({0: 80.0, 1: 81.0, 2: 79.5}, {0: 80.6, 1: 81.9, 2: 79.4}),
             16: ({0: 85.0, 1: 84.2, 2: 85.5, 3: 84.9}, {0: 85.3, 1: 84.9, 2: 85.4, 3: 85.6})}
    for k in (1, 3, 6):
        lo, hi = bonferroni(pooled(pairs), k)
        direct = pooled(pairs, level=1 - 0.05 / k)
        assert (lo, hi) == (pytest.approx(direct.lo), pytest.approx(direct.hi))
    assert bonferroni(pooled({8: ({0: 1.0}, {0: 2.0})}), 6) == (None, None)  # one pair: no interval
