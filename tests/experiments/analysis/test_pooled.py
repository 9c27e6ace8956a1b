import math

import numpy as np
import pytest
from scipy.stats import t

from experiments.analysis.pooled import p_improvement, pooled, rel_error_reduction, stratified_bootstrap

# Two rows (strata) of three seeds: gaps star - sum are 1, 2, 0 and -1, 1, 2.
PAIRS = {16: ({0: 80.0, 1: 81.0, 2: 82.0}, {0: 81.0, 1: 83.0, 2: 82.0}),
         32: ({0: 85.0, 1: 85.0, 2: 86.0}, {0: 84.0, 1: 86.0, 2: 88.0})}


def test_pooled_against_hand_computed_values():
    p = pooled(PAIRS)
    assert p.n_pairs == 6 and p.n_strata == 2
    assert p.mean == pytest.approx(5 / 6)
    # Stratified variance: (3/6)^2 * 1/3 + (3/6)^2 * (7/3)/3 = 10/36; Welch-Satterthwaite df = 100/29.
    assert p.df == pytest.approx(100 / 29)
    half = t.ppf(0.975, 100 / 29) * math.sqrt(10 / 36)
    assert (p.lo, p.hi) == pytest.approx((5 / 6 - half, 5 / 6 + half))
    assert p.significant is False  # the interval straddles 0
    assert (p.wins, p.ties, p.losses) == (4, 1, 1)
    assert p.p_improve == pytest.approx(4.5 / 6)  # a tie counts half
    err_sum, err_star = np.mean([20, 19, 18, 15, 15, 14]), np.mean([19, 17, 18, 16, 14, 12])
    assert p.rel_err == pytest.approx((err_sum - err_star) / err_sum)
    assert p.p_improve_lo <= p.p_improve <= p.p_improve_hi
    assert 0.0 <= p.p_improve_lo and p.p_improve_hi <= 1.0
    assert p.wilcoxon_p is not None and 0 < p.wilcoxon_p <= 1


def test_bootstrap_is_fixed_by_its_seed_and_stratified():
    strata = [np.array([[80.0, 81.0], [81.0, 83.0], [82.0, 82.0]]), np.array([[85.0, 84.0], [85.0, 86.0]])]
    a = stratified_bootstrap(strata, p_improvement, n_boot=500, seed=3)
    assert a == stratified_bootstrap(strata, p_improvement, n_boot=500, seed=3)
    # Every resample keeps each stratum's size, so one all-wins stratum alone gives a point interval at 1.
    wins = [np.array([[80.0, 81.0], [81.0, 82.5], [79.0, 80.0]])]
    assert stratified_bootstrap(wins, p_improvement, n_boot=200) == (1.0, 1.0)
    assert rel_error_reduction(np.array([90.0]), np.array([95.0])) == pytest.approx(0.5)


def test_degenerate_sweeps_are_not_called_significant():
    two = pooled({16: ({0: 80.0, 1: 81.0}, {0: 80.2, 1: 81.2})})
    assert two.significant is None and "needs >= 3" in two.reason
    flat = pooled({16: ({0: 80.0, 1: 81.0, 2: 82.0}, {0: 80.2, 1: 81.2, 2: 82.2})})
    assert flat.mean == pytest.approx(0.2) and flat.significant is None and "identical" in flat.reason
    single_row_pair = pooled({16: ({0: 80.0, 1: 81.0}, {0: 81.0, 1: 83.0}), 32: ({0: 85.0}, {0: 86.0})})
    assert single_row_pair.significant is None and "single pair" in single_row_pair.reason
    assert pooled({}).reason == "no paired runs"


def test_clear_effect_is_significant():
    rng = np.random.default_rng(0)
    pairs = {w: ({s: 80 + rng.normal(0, 0.3) for s in range(6)}, {}) for w in (8, 16)}
    for w, (base, test) in pairs.items():
        test.update({s: v + 2.0 + rng.normal(0, 0.3) for s, v in base.items()})
    p = pooled(pairs)
    assert p.significant is True and p.lo > 0 and p.wins == 12 and p.p_improve == 1.0


def test_a_small_relative_reduction_keeps_its_digits():
    """-0.04% printed as "-0.0%", and its interval as "[-0.1%, -0.0%]": the digits that say something are kept."""
    from experiments.analysis.pooled import signed_percent
    assert [signed_percent(x) for x in (None, 0.0, 0.123, -0.0004, -0.00004, 0.0000004, -1e-9)] == \
        ["–", "0.0%", "+12.3%", "-0.04%", "-0.004%", "+4.0e-05%", "-1.0e-07%"]
