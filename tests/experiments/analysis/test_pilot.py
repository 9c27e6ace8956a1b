"""experiments/analysis/pilot.py: docs/protocol.md's budget and seed rules and the headroom criterion, on hand-made
pilot results."""
import math

import pytest
from scipy.stats import t

from experiments.analysis import pilot


def test_seeds_needed_is_the_smallest_n_meeting_the_half_width():
    for s in (0.3, 0.6, 0.8):
        n = pilot.seeds_needed(s)
        half = lambda k: t.ppf(0.975, k - 1) * s / math.sqrt(k)  # noqa: E731
        assert 5 <= n <= 10
        assert half(n) <= 0.5 or n == 10
        assert n == 5 or half(n - 1) > 0.5
    assert pilot.seeds_needed(0.01) == 5 and pilot.seeds_needed(5.0) == 10  # the clamp


def runs_of(means, gap_by_seed):
    """(width, epochs, op, seed) -> top1: the pooled mean at each budget, star - sum = gap_by_seed[seed]."""
    runs = {}
    for (w, e), m in means.items():
        for s, g in enumerate(gap_by_seed):
            runs[(w, e, "star", s)], runs[(w, e, "sum", s)] = m + g / 2, m - g / 2
    return runs


def test_budget_rule_takes_the_smallest_plateaued_budget_above_the_baseline():
    means = {(8, 1): 60.0, (8, 4): 86.0, (8, 8): 87.8, (8, 16): 88.0,
             (32, 1): 70.0, (32, 4): 88.0, (32, 8): 89.6, (32, 16): 90.0}
    r = pilot.apply_rules(runs_of(means, [0.4, -0.2, 1.0]), baseline=85.0)
    assert r["chosen_epochs"] == 8 and r["plateaued"]        # 4 epochs is > 0.5 below the best at width 32
    sd = math.sqrt(2 * (((0.4 - 0.4) ** 2 + (-0.2 - 0.4) ** 2 + (1.0 - 0.4) ** 2)) / 4)
    assert r["pooled_gap_sd"] == pytest.approx(sd) and r["gap_sd_df"] == 4
    assert r["seeds"] == pilot.seeds_needed(sd)
    # A baseline the runs do not clear by 2 points at any budget: the largest budget, flagged.
    r = pilot.apply_rules(runs_of(means, [0.4, -0.2, 1.0]), baseline=89.0)
    assert r["chosen_epochs"] == 16 and not r["plateaued"]
    # A budget run at one width only (a ladder being extended) is not judged yet.
    partial = {**runs_of(means, [0.4, -0.2, 1.0]), (8, 32, "star", 0): 90.0, (8, 32, "sum", 0): 89.0}
    r = pilot.apply_rules(partial, baseline=85.0)
    assert r["budgets"] == [1, 4, 8, 16] and r["incomplete_budgets"] == [32] and r["chosen_epochs"] == 8


def test_headroom_rule_needs_room_above_the_baseline_capacity_and_trained_runs():
    runs = {k: v for k, v in runs_of({(8, 16): 74.0, (48, 16): 81.0}, [0.4, -0.2, 1.0]).items()}
    r = pilot.apply_headroom_rule(runs, baseline=70.0)
    assert r["headroom"] == pytest.approx(11.0) and r["capacity"] == pytest.approx(7.0) and r["qualifies"]
    sd = math.sqrt(2 * ((0.0 ** 2 + 0.6 ** 2 + 0.6 ** 2)) / 4)
    assert r["pooled_gap_sd"] == pytest.approx(sd) and r["seeds"] == pilot.seeds_needed(sd, lo=6, hi=8)
    assert not pilot.apply_headroom_rule(runs, baseline=71.5)["qualifies"]          # 9.5 points of headroom
    narrow = runs_of({(8, 16): 77.0, (48, 16): 81.0}, [0.4, -0.2, 1.0])
    assert not pilot.apply_headroom_rule(narrow, baseline=70.0)["qualifies"]        # capacity 4 < 5
    low = runs_of({(8, 16): 71.0, (48, 16): 81.0}, [0.4, -0.2, 1.0])
    r = pilot.apply_headroom_rule(low, baseline=70.0)
    assert not r["qualifies"] and not r["checks"]["every run >= baseline + 2"]      # width 8 not trained
    noisy = runs_of({(8, 16): 74.0, (48, 16): 81.0}, [3.0, -3.0, 2.0])
    assert pilot.apply_headroom_rule(noisy, baseline=70.0)["seeds"] == 8             # the clamp at 8
