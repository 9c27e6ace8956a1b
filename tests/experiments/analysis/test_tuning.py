"""The tuning analysis: Dodge's and Tang's expected best of n trials against hand-computed values, which sweeps are
tuning sweeps, the selection rule, and the files a tuning sweep's summary writes."""
import math

import pytest

from experiments.analysis import Job, aggregate
from experiments.analysis.tuning import (crossings, expected_max, expected_max_unbiased, summarize_tuning,
                                         tuned_knobs)


def test_expected_max_matches_hand_computed_values():
    # values 1, 2, 3 drawn with replacement: n = 1 is the mean, 2 with SD sqrt(2/3)
    assert expected_max([3, 1, 2], 1) == pytest.approx((2.0, math.sqrt(2 / 3)))
    # n = 2: P(max=1) = 1/9, P(max=2) = 3/9, P(max=3) = 5/9 -> 22/9; E[max^2] = 58/9, so Var = 38/81
    assert expected_max([1, 2, 3], 2) == pytest.approx((22 / 9, math.sqrt(38 / 81)))
    # many draws find the best value almost surely
    assert expected_max([1, 2, 3], 200)[0] == pytest.approx(3.0)
    assert expected_max([5.0], 3) == pytest.approx((5.0, 0.0))


def test_unbiased_expected_max_without_replacement():
    # pairs of {1, 2, 3} without replacement: {1,2} {1,3} {2,3} -> maxima 2, 3, 3
    assert expected_max_unbiased([2, 3, 1], 2) == pytest.approx(8 / 3)
    assert expected_max_unbiased([1, 2, 3], 1) == pytest.approx(2.0)
    assert expected_max_unbiased([1, 2, 3], 3) == pytest.approx(3.0)
    with pytest.raises(ValueError):
        expected_max_unbiased([1, 2, 3], 4)


def test_crossings():
    assert crossings([1, 2, 3], [2, 2, 2]) == [3]      # behind, level (no sign), ahead
    assert crossings([3, 3, 3], [1, 2, 2.5]) == []
    assert crossings([1, 3, 1], [2, 2, 2]) == [2, 3]


def _job(op, width, lr, wd, top1, seed=0):
    knobs = {"op": op, "seed": seed, "width": width, "trainer.lr": lr, "trainer.weight_decay": wd,
             "data.name": "fashion_mnist"}
    record = {"status": "completed", "task": "classify", "op": op, "seed": seed, "top1": top1}
    return Job(f"op={op},lr={lr},wd={wd},width={width}", "completed", None, knobs, record)


def test_a_grid_over_lr_and_weight_decay_is_a_tuning_sweep_with_width_cells():
    jobs = [_job(op, w, lr, wd, 80 + lr * 1000 + (op == "star"))
            for w in (8, 32) for lr in (1e-3, 2e-3) for wd in (0.05, 0.5) for op in ("star", "sum")]
    assert tuned_knobs(jobs) == (["trainer.lr", "trainer.weight_decay"], ["width"])
    tuning = summarize_tuning(jobs, "top1")
    assert [c.key for c in tuning.cells] == [(8,), (32,)] and tuning.ops == ["star", "sum"]
    star = tuning.cells[0].by_op["star"]
    assert star.n == 4
    # the best trial is the larger lr; its tie in weight decay goes to the smaller value
    assert star.best() == ((2e-3, 0.05), pytest.approx(83.0))
    assert tuning.edges(star.best()[0]) == ["trainer.lr at the highest value tried",
                                            "trainer.weight_decay at the lowest value tried"]


def test_each_op_at_its_own_setting_is_not_a_tuning_sweep():
    # the test-set runs of a tuned comparison: lr differs between the ops, not within one op of one width
    jobs = [_job("star", 8, 4e-3, 0.05, 88.0, seed=s) for s in range(3)]
    jobs += [_job("sum", 8, 8e-3, 0.05, 88.0, seed=s) for s in range(3)]
    assert tuned_knobs(jobs) == ([], [])
    assert summarize_tuning(jobs, "top1") is None


def test_a_tuning_sweep_summary_writes_the_tuning_files(tmp_path):
    import json
    import yaml
    for lr in (1e-3, 4e-3, 1.6e-2):
        for op in ("star", "sum"):
            job = tmp_path / f"op={op},trainer.lr={lr}"
            (job / ".hydra").mkdir(parents=True)
            cfg = {"op": op, "seed": 0, "width": 8, "model": {"name": "demonet"}, "data": {"name": "fashion_mnist"},
                   "trainer": {"epochs": 2, "lr": lr}, "task": {"name": "classify"}, "logger": {"name": "none"}}
            (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
            top1 = 85.0 + 10 * lr * (1 if op == "star" else -1) + lr * 100
            (job / "metrics.json").write_text(json.dumps({"status": "completed", "task": "classify", "op": op,
                                                          "seed": 0, "width": 8, "top1": top1}))
    paths = aggregate(tmp_path, wandb=None)
    assert {p.name for p in paths} >= {"tuning.md", "tuning.csv", "expected_best.png"}
    text = (tmp_path / "tuning.md").read_text()
    assert "| star | 3 |" in text and "lr 0.016 (trainer.lr at the highest value tried)" in text
    assert "the curves do not cross" in text
    assert "tuning.md" in (tmp_path / "summary.md").read_text()
    rows = (tmp_path / "tuning.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 3  # header, then n = 1..3 for each op
