"""scripts/protocol_pilot.py: docs/protocol.md's budget and seed rules, on hand-made pilot results."""
import importlib.util
import json
import math

import pytest
import yaml
from scipy.stats import t

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("protocol_pilot", ROOT / "scripts" / "protocol_pilot.py")
pilot = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pilot)


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


def test_cli_on_a_pilot_dir(tmp_path):
    data = {"name": "synthetic", "image_size": 8, "in_chans": 1, "num_classes": 4, "train_size": 64,
            "val_size": 32, "noise": 0.5, "mean": [0.0], "std": [1.0], "augment": False}
    means = {(8, 1): 80.0, (8, 2): 99.0}
    for (w, e, op, s), top1 in runs_of(means, [0.5, 0.1, 0.3]).items():
        job = tmp_path / f"w{w}_e{e}_{op}_{s}"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"data": data}))
        (job / "metrics.json").write_text(json.dumps({"status": "completed", "width": w, "epochs": e, "op": op,
                                                      "seed": s, "top1": top1}))
    from tests.scripts.test_scripts import run_script
    out = run_script("protocol_pilot.py", tmp_path, "--json", tmp_path / "p.json").stdout
    assert "Chosen budget" in out
    assert json.loads((tmp_path / "p.json").read_text())["widths"] == [8]


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
