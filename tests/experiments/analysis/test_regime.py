"""experiments/analysis/regime.py: the trained-regime check and the caveat a flagged sweep opens with."""
import json

import yaml

from experiments.analysis import aggregate
from experiments.analysis.baseline import CACHE_FILE, data_key


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
