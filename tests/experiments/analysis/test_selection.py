"""experiments/analysis/selection.py: the names and values of the presets the selection rule writes (the presets
themselves, end to end: tests/scripts/test_tune_select.py)."""
from experiments.analysis.selection import option_name, yaml_value


def test_option_names_are_short_sortable_config_names():
    assert option_name(["width"], (8,), "star") == "w8_star"
    assert option_name(["depth", "width"], (12, 8), "sum") == "depth12_w8_sum"
    assert option_name(["model.act"], ("none",), "star") == "actnone_star"


def test_floats_are_written_in_six_significant_digits():
    assert yaml_value(0.004) == "0.004" and yaml_value(1e-07) == "1e-07" and yaml_value(8) == "8"
