"""experiments/analysis/levels.py: the two-level change section (no_act's Table 4 question) and the trend of the gap
along one numeric axis (amendment 4), by hand."""
from experiments.analysis.levels import trend_lines, two_level_lines
from experiments.analysis.summary import Row, Summary


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
