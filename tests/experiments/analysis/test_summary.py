"""experiments/analysis/summary.py: ops at their own tuned settings, the knobs grouped per op, and the hint a sweep
without the reference op gets."""
import pytest

from experiments.analysis import Job, aggregate
from experiments.analysis.summary import per_op_values


def test_ops_at_their_own_tuned_settings_still_pair_by_seed_in_one_row_per_width():
    from experiments.analysis import Job
    from experiments.analysis.summary import op_settings, summarize, varied_knobs
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


def test_per_op_values_groups_a_knobs_values_by_op_and_cell():
    jobs = [Job(f"{op},{w},{lr}", "completed", None, {"op": op, "width": w, "trainer.lr": lr}, {})
            for op in ("star", "sum") for w in (8, 16) for lr in ((1, 2) if op == "star" else (3,))]
    assert per_op_values(jobs, "trainer.lr", ["width"]) == {("star", 8): {1, 2}, ("star", 16): {1, 2},
                                                            ("sum", 8): {3}, ("sum", 16): {3}}


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
