"""The probe's grouping over seeds and its figure (``experiments.analysis.probe``), on hand-made results, and
``probe_model`` on an untrained tiny DemoNet: the hooks see every block's hidden features and outputs."""
import matplotlib.image
import pytest
import torch
from scipy import stats

from demonet import DemoNet
from experiments.analysis.probe import plot_probes, probe_model, summarize_probes


def fake_run(op, width, seed, erank):
    blocks = [{"block": i, "hidden_dim": 3 * width, "effective_rank": erank + i, "energy_90": 2, "energy_99": 3,
               "numerical_rank": 3 * width, "probe_top1": 50.0 + seed + i} for i in range(2)]
    return {"op": op, "width": width, "depth": 2, "seed": seed, "probe": {"blocks": blocks}}


def test_groups_average_blocks_then_seeds(tmp_path):
    runs = [fake_run(op, w, s, (3.0 if op == "star" else 1.0) * w + s) for op in ("sum", "star", "max")
            for w in (8, 32) for s in range(3)]
    groups = summarize_probes(runs)
    assert [(g["op"], g["width"]) for g in groups][:3] == [("max", 8), ("star", 8), ("sum", 8)]
    star8 = next(g for g in groups if (g["op"], g["width"]) == ("star", 8))
    per_seed = [24.0 + s + 0.5 for s in range(3)]      # blocks' mean: erank + 0.5
    lo, hi = stats.t.interval(0.95, 2, loc=sum(per_seed) / 3, scale=stats.sem(per_seed))
    assert star8["effective_rank"]["mean"] == pytest.approx(sum(per_seed) / 3)
    assert (star8["effective_rank"]["lo"], star8["effective_rank"]["hi"]) == (pytest.approx(lo), pytest.approx(hi))
    assert star8["probe_top1_last_block"]["mean"] == pytest.approx(52.0) and star8["seeds"] == [0, 1, 2]
    plot_probes(groups, tmp_path / "probe.png", "a title")
    image = matplotlib.image.imread(tmp_path / "probe.png")
    assert image.shape[0] > 300 and image.shape[1] > 1000


def test_probe_model_hooks_every_block():
    torch.manual_seed(0)
    model = DemoNet(width=8, depth=3, op="star", num_classes=3, in_chans=1, patch_size=4)
    x = torch.randn(40, 1, 16, 16)
    y = torch.arange(40) % 3
    result = probe_model(model, x[:24], y[:24], x[24:], y[24:], 3, rank_images=10, probe_train=24, probe_test=16,
                         batch=7)
    assert result["tokens"] == 10 * 16 and [b["block"] for b in result["blocks"]] == [0, 1, 2]
    assert all(b["hidden_dim"] == 24 and 0 < b["effective_rank"] <= 24 for b in result["blocks"])
    assert not any(m._forward_pre_hooks or m._forward_hooks for m in model.modules())   # hooks removed
