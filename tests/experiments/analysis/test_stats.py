"""The paired star-vs-sum gap and its t interval, against numbers worked out by hand."""
import math

import pytest

from experiments.analysis.stats import mean_std, paired_diffs, paired_gap, per_seed_slopes, t_interval


def test_paired_gap_known_answer():
    # diffs 5, 4, 6: mean 5, sd 1, t(0.975, 2) = 4.302653 -> half width 4.302653 / sqrt(3)
    gap = paired_gap({0: 70, 1: 72, 2: 74}, {0: 75, 1: 76, 2: 80})
    half = 4.302653 / math.sqrt(3)
    assert gap.n == 3 and gap.mean == pytest.approx(5)
    assert gap.lo == pytest.approx(5 - half, abs=1e-5) and gap.hi == pytest.approx(5 + half, abs=1e-5)
    assert gap.significant
    assert paired_gap({0: 1.0}, {0: 2.0}).significant is None  # one seed: no interval


def test_paired_diffs_keep_only_seeds_both_sides_have():
    assert paired_diffs({0: 70.0, 1: 72.0, 3: 1.0}, {1: 75.0, 0: 71.5, 2: 9.0}) == {0: 1.5, 1: 3.0}


def test_mean_std_of_few_values():
    assert mean_std([]) == (None, None)
    assert mean_std([3.0]) == (3.0, None)
    assert mean_std([1.0, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))


def test_per_seed_slopes_need_three_levels_and_are_least_squares():
    # seed "a": y = 2x + 1 exactly; seed "b": 0, 1, 5 on x 0, 1, 2 -> slope (sum (x-1)(y-2)) / 2 = (2 + 3) / 2 = 2.5
    slopes = per_seed_slopes({0.0: {"a": 1.0, "b": 0.0, "c": 4.0}, 1.0: {"a": 3.0, "b": 1.0, "c": 1.0},
                              2.0: {"a": 5.0, "b": 5.0}})
    assert set(slopes) == {"a", "b"} and slopes["a"] == pytest.approx(2.0) and slopes["b"] == pytest.approx(2.5)


def test_t_interval_is_paired_gaps_interval():
    assert t_interval([5.0, 4.0, 6.0]) == paired_gap({0: 70, 1: 72, 2: 74}, {0: 75, 1: 76, 2: 80})
    assert t_interval([1.0]).lo is None and t_interval([1.0]).n == 1


def test_pooled_sd_pools_within_group_variances_by_their_degrees_of_freedom():
    from experiments.analysis.stats import pooled_sd
    # groups with SD 1 (3 values, 2 df) and SD 2 (2 values, 1 df); a single value adds nothing
    sd, df = pooled_sd([[1.0, 2.0, 3.0], [0.0, 2 * 2 ** 0.5], [7.0]])
    assert df == 3 and sd == pytest.approx(((2 * 1.0 + 1 * 4.0) / 3) ** 0.5)
    assert pooled_sd([[5.0], []]) == (None, 0)


def test_trend_is_per_doubling_and_its_band_is_the_seeds_lines():
    from experiments.analysis.stats import trend, trend_band
    # seed 0: gap = 1 − 0.5·log2(level); seed 1: gap = 2 − 0.3·log2(level), exactly
    gaps = {x: {0: 1 - 0.5 * math.log2(x), 1: 2 - 0.3 * math.log2(x)} for x in (8, 16, 32)}
    g = trend(gaps)
    assert g.n == 2 and g.mean == pytest.approx(-0.4)
    (m16, lo16, hi16), = trend_band(gaps, [16])
    assert m16 == pytest.approx(((1 - 2.0) + (2 - 1.2)) / 2)     # the two lines' mean at 16
    assert lo16 < m16 < hi16


def test_p_value_is_the_t_test_behind_the_interval():
    from scipy import stats
    from experiments.analysis.stats import gap_p_value, p_value
    values = [0.3, 0.1, 0.5, 0.2, 0.4]
    g = t_interval(values)
    assert gap_p_value(g) == pytest.approx(stats.ttest_1samp(values, 0).pvalue)
    assert p_value(1.0, None, None, 3) is None


def test_holm_steps_down_and_keeps_order():
    from experiments.analysis.stats import holm
    # sorted 0.01, 0.02, 0.04 -> 0.03, 0.04, 0.04 (monotone), back in the input's order
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.6, 0.9]) == pytest.approx([1.0, 1.0])
