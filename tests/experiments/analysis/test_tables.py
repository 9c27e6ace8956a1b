"""experiments/analysis/tables.py: the two-level change section (no_act's Table 4 question) and the trend of
the gap along one numeric axis (amendment 4), by hand; the trained-regime check and the caveat a flagged sweep
opens with; ops at their own tuned settings."""
import json

import pytest
import yaml

from experiments.analysis import aggregate
from experiments.analysis.baseline import CACHE_FILE, data_key
from experiments.analysis.tables import Row, Summary, trend_lines, two_level_lines


def _summary(rows, axes=("model.act",)):
    return Summary(metric="top1", varied=[*axes, "op", "seed"], axes=list(axes), rows=rows, title="t")


def test_each_ops_change_and_the_gaps_change_paired_by_seed():
    gelu = Row(("gelu",), {"sum": {0: 80, 1: 81, 2: 82}, "star": {0: 81, 1: 83, 2: 82}})
    none = Row(("none",), {"sum": {0: 50, 1: 52, 2: 51}, "star": {0: 80, 1: 81, 2: 83}})
    text = "\n".join(two_level_lines(_summary([gelu, none])))
    assert "## Change from model.act=gelu to model.act=none" in text
    # sum: -30, -29, -31 -> mean -30, sd 1, t(0.975, 2) = 4.303: half-width 2.484
    assert "| sum | -30.00 [-32.48, -27.52] | 3 | yes |" in text
    assert "| star | -0.67 [" in text and "| star | -0.67 [-4.46, +3.13] | 3 | no |" in text
    # gaps 1, 2, 0 -> 30, 29, 32: changes 29, 27, 32, mean 29.33, sd 2.5166, half-width 6.2515
    assert "| gap star − sum | +29.33 [+23.08, +35.58] | 3 | yes |" in text


def test_nothing_for_other_sweeps():
    rows = [Row((w,), {"sum": {0: 1.0}, "star": {0: 2.0}}) for w in (8, 16, 32)]
    assert two_level_lines(_summary(rows, axes=("width",))) == []
    assert two_level_lines(_summary(rows[:1], axes=())) == []


def test_trend_is_the_mean_per_seed_slope_on_log2_of_the_axis():
    # gaps at widths 8, 16, 32 (log2 3, 4, 5): seed 0: 1, 0.5, 0 -> slope -0.5; seed 1: 2, 1, 0 -> -1; seed 2: flat 0.
    # seed 3 has gaps at two widths only: left out. Mean -0.5, sd 0.5, half-width 4.302653 * 0.5 / sqrt(3) = 1.242
    rows = [Row((8,), {"sum": {0: 80, 1: 80, 2: 80, 3: 80}, "star": {0: 81, 1: 82, 2: 80, 3: 85}}),
            Row((16,), {"sum": {0: 80, 1: 80, 2: 80, 3: 80}, "star": {0: 80.5, 1: 81, 2: 80, 3: 70}}),
            Row((32,), {"sum": {0: 80, 1: 80, 2: 80}, "star": {0: 80, 1: 80, 2: 80}})]
    text = "\n".join(trend_lines(_summary(rows, axes=("width",))))
    assert "## Trend of the gap with width" in text
    assert "| star − sum | -0.50 [-1.74, +0.74] | 3 | no |" in text


def test_no_trend_for_two_levels_or_categories():
    two = [Row((w,), {"sum": {0: 1.0}, "star": {0: 2.0}}) for w in (8, 16)]
    assert trend_lines(_summary(two, axes=("width",))) == []
    acts = [Row((a,), {"sum": {0: 1.0}, "star": {0: 2.0}}) for a in ("gelu", "none", "relu")]
    assert trend_lines(_summary(acts)) == []


def test_ops_at_their_own_tuned_settings_still_pair_by_seed_in_one_row_per_width():
    from experiments.analysis import Job
    from experiments.analysis.tables import op_settings, summarize, varied_knobs
    best = {("star", 8): 4e-3, ("sum", 8): 8e-3, ("star", 32): 2e-3, ("sum", 32): 2e-3}
    jobs = [Job(f"{op},{w},{s}", "completed", None,
                {"op": op, "seed": s, "width": w, "trainer.lr": best[(op, w)]},
                {"status": "completed", "task": "classify", "top1": 80.0 + s + (op == "star")})
            for (op, w) in best for s in range(3)]
    assert op_settings(jobs, varied_knobs(jobs)) == ["trainer.lr"]
    summary = summarize(jobs)
    assert summary.axes == ["width"]
    assert [r.gap.n for r in summary.rows] == [3, 3] and summary.rows[0].gap.mean == pytest.approx(1.0)
    # a grid over lr that every op trains (a tuning sweep) is not a per-op setting: it makes the rows
    grid = [Job(f"{op},{lr}", "completed", None, {"op": op, "seed": 0, "trainer.lr": lr},
                {"status": "completed", "task": "classify", "top1": 80.0}) for op in ("star", "sum") for lr in (1, 2)]
    assert op_settings(grid, varied_knobs(grid)) == [] and summarize(grid).axes == ["trainer.lr"]


def _flagged(tmp_path, baseline=90.0):
    from tests.experiments.analysis.fake_sweeps import make_sweep
    return make_sweep(tmp_path / "s", baseline=baseline)


def _sweep_with_baseline(root, results, baseline):
    """width -> op -> per-seed top1 (no per-epoch history), the jobs' images with the linear baseline ``baseline``."""
    from tests.experiments.analysis.test_sweep import _sweep_of
    sweep = _sweep_of(root, results)
    for job in sweep.iterdir():
        record = json.loads((job / "metrics.json").read_text())
        (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(
            {"data": {"name": "fashion_mnist"}, **{k: record[k] for k in ("op", "seed", "width")}}))
    (sweep / CACHE_FILE).write_text(json.dumps({data_key({"name": "fashion_mnist"}): baseline}))
    aggregate(sweep, wandb=None)
    return (sweep / "summary.md").read_text()


def test_an_under_trained_sweep_says_so_before_any_number(tmp_path):
    md = (_flagged(tmp_path) / "summary.md").read_text()
    head = md.split("## ")[0]
    assert "**Not evidence about the ops: under-trained.** 12 of 12 runs do not beat the linear baseline " \
           "(90.00%) by 2 points" in head
    assert "- **Most runs are below the baseline + 2: under-trained" in md  # and the check itself, as before


def test_a_sweep_with_some_flagged_runs_says_how_many_first(tmp_path):
    md = _sweep_with_baseline(tmp_path / "s", {8: {"sum": [70.0, 75.0, 76.0], "star": [71.0, 76.0, 77.0]}}, 71.0)
    head = md.split("## ")[0]
    assert "**Caveat: 2 of 6 runs are flagged by the trained-regime check**" in head  # 70 and 71 < 71 + 2
    assert "Not evidence" not in md


def test_a_sweep_in_the_trained_regime_has_no_caveat(tmp_path):
    md = _sweep_with_baseline(tmp_path / "s", {8: {"sum": [70.0, 75.0, 76.0], "star": [71.0, 76.0, 77.0]}}, 60.0)
    assert "Caveat" not in md and "Not evidence" not in md and "- 6 of 6 runs beat" in md


def test_runs_of_one_epoch_do_not_claim_a_plateau(tmp_path):
    md = _sweep_with_baseline(tmp_path / "s", {8: {"sum": [80.0, 81.0], "star": [80.5, 81.0]}}, 70.0)
    assert "gained less than" not in md
    assert "- 4 of 4 runs have fewer than two epochs of history: whether they plateaued is not measured." in md


def test_flagged_runs_are_listed_in_the_order_of_their_knobs(tmp_path):
    results = {w: {"sum": [50.0], "star": [50.0]} for w in (64, 8, 12)}
    md = _sweep_with_baseline(tmp_path / "s", results, 70.0)
    flagged = md.split("Flagged (kept in every table): ")[1].split("\n")[0]
    assert [int(part.split(",")[0]) for part in flagged.split("width=")[1:]] == [8, 8, 12, 12, 64, 64]


def test_a_sweep_without_the_reference_op_says_how_to_name_one(tmp_path, caplog, monkeypatch):
    """`-m op=star,mypkg.ops:my_op` has no sum run: every gap would read "–" and the gap panel stay empty."""
    import matplotlib.axes
    from tests.experiments.analysis.test_sweep import _sweep_of
    sweep = _sweep_of(tmp_path / "s", {8: {"star": [80.0, 81.0], "mypkg.ops:my_op": [80.5, 81.5]}})
    drawn = []
    original = matplotlib.axes.Axes.text
    monkeypatch.setattr(matplotlib.axes.Axes, "text", lambda self, x, y, s, **kw: (drawn.append(s),
                                                                                 original(self, x, y, s, **kw))[1])
    with caplog.at_level("WARNING", logger="starbench"):
        aggregate(sweep, wandb=None)
    hint = ("No completed sum run (the reference op), so no gap: name one of this sweep's ops (mypkg.ops:my_op, star) "
            "as the reference: `python scripts/aggregate.py SWEEP_DIR --reference OP`, or at the end of a multirun "
            "`+hydra.callbacks.sweep_summary.reference=OP`.")
    assert f"**{hint}**" in (sweep / "summary.md").read_text().split("## ")[0]
    assert hint in caplog.text
    assert any(text.startswith("No completed sum run (the reference op), so no gap: pass a reference op") for text in
               map(" ".join, (t.split() for t in drawn)))
    aggregate(sweep, wandb=None, reference="star")  # named: the gaps are there, and no hint
    md = (sweep / "summary.md").read_text()
    assert "No completed" not in md and "| all | 80.50 ± 0.71 | 81.00 ± 0.71 | +0.50 [+0.50, +0.50] |" in md
