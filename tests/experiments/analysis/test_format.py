"""experiments/analysis/format.py: how a value, mean ± std, a gap and its significance are spelled in every output."""
from experiments.analysis.format import (as_key, format_gap, format_mean_std, format_op, format_significant,
                                         format_value, value_order)
from experiments.analysis.stats import Gap


def test_values_and_ops():
    assert format_value(None) == "" and format_value((1, 2)) == "[1,2]" and format_value(0.5) == "0.5"
    assert format_op(["sum", "star"]) == "[sum,star]" and format_op("star") == "star"
    assert sorted([16, None, "a", 2], key=value_order) == [None, 2, 16, "a"]
    assert as_key([1, 2]) == (1, 2) and as_key(3) == 3


def test_mean_std_and_gaps():
    assert format_mean_std([]) == "–" and format_mean_std([1.0]) == "1.00"
    assert format_mean_std([1.0, 2.0, 3.0]) == "2.00 ± 1.00"
    assert format_gap(Gap(0)) == "–" and format_gap(Gap(1, 0.4)) == "+0.40"
    assert format_gap(Gap(3, 0.4, 0.1, 0.7)) == "+0.40 [+0.10, +0.70]"
    assert format_significant(Gap(3, 0.4, 0.1, 0.7)) == "yes" and format_significant(Gap(3, 0.4, -0.1, 0.9)) == "no"
    assert format_significant(Gap(2, 0.4, 0.1, 0.7)) == "n/a (2 pairs)" and format_significant(Gap(0)) == "n/a"
