import json

import pytest
import torch

from experiments.analysis import baseline
from experiments.analysis.baseline import CACHE_FILE, fit_linear, linear_baseline


def test_fit_linear_separates_linearly_separable_data_and_not_noise():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(20, 3, generator=g)
    x = torch.randn(600, 20, generator=g)
    y = (x @ w).argmax(1)
    assert fit_linear(x[:400], y[:400], x[400:], y[400:], 3, l2=1e-4) > 90.0  # chance: 33%
    y_random = torch.randint(0, 3, (600,), generator=g)
    assert fit_linear(x[:400], y_random[:400], x[400:], y_random[400:], 3) < 50.0


DCFG = {"name": "synthetic", "image_size": 8, "in_chans": 1, "num_classes": 4, "train_size": 200,
        "val_size": 100, "noise": 0.5, "mean": [0.0], "std": [1.0], "augment": False}


def test_linear_baseline_on_a_data_config_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("STARBENCH_CACHE", str(tmp_path / "user"))
    dcfg = DCFG
    acc = linear_baseline(dcfg, tmp_path)
    assert 25.0 < acc <= 100.0
    cache = json.loads((tmp_path / CACHE_FILE).read_text())
    assert list(cache.values()) == [pytest.approx(acc)]
    cache = {k: -1.0 for k in cache}  # a cached value is read back, not refitted
    (tmp_path / CACHE_FILE).write_text(json.dumps(cache))
    assert linear_baseline(dcfg, tmp_path) == -1.0
    assert linear_baseline({**dcfg, "train_size": 100}, tmp_path) != -1.0  # other images, another entry
    assert linear_baseline({"name": "imagenet"}, tmp_path) is None


def test_a_new_sweep_dir_reads_the_baseline_from_the_user_cache(tmp_path, monkeypatch):
    """The per-user cache saves a new sweep dir the fit; the value it holds is copied into the sweep's own cache."""
    monkeypatch.setenv("STARBENCH_CACHE", str(tmp_path / "user"))
    acc = linear_baseline(DCFG, tmp_path / "sweep1")
    key = baseline.data_key(DCFG)
    assert json.loads((tmp_path / "user" / CACHE_FILE).read_text()) == {key: pytest.approx(acc)}
    (tmp_path / "user" / CACHE_FILE).write_text(json.dumps({key: -2.0}))  # read back, not refitted
    monkeypatch.setattr(baseline, "fit_linear", lambda *a, **k: pytest.fail("refitted"))
    assert linear_baseline(DCFG, tmp_path / "sweep2") == -2.0
    assert json.loads((tmp_path / "sweep2" / CACHE_FILE).read_text()) == {key: -2.0}
    assert linear_baseline(DCFG, tmp_path / "sweep1") == pytest.approx(acc)  # a sweep's own cache comes first
    assert sorted(p.name for p in (tmp_path / "sweep2").iterdir()) == [CACHE_FILE]  # no temp or lock file left


def test_a_fit_says_what_it_does_and_how_far_it_is(tmp_path, monkeypatch, caplog):
    """The fit on 55k images takes minutes at a sweep's end: it says so first, then its progress, with the same
    result as a silent fit."""
    monkeypatch.setenv("STARBENCH_CACHE", str(tmp_path / "user"))
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(300, 10, generator=g), torch.randint(0, 3, (300,), generator=g)
    quiet = fit_linear(x[:200], y[:200], x[200:], y[200:], 3)
    monkeypatch.setattr(baseline, "PROGRESS_S", 0.0)
    with caplog.at_level("INFO", logger="starbench"):
        assert fit_linear(x[:200], y[:200], x[200:], y[200:], 3) == quiet
        linear_baseline(DCFG, tmp_path)
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("linear baseline: 2 loss evaluations of at most 625, loss ") for line in lines)
    assert any(line.startswith("linear baseline: fitting softmax regression on 200 training images, once for these "
                               f"images (then cached in {tmp_path / 'user'}") for line in lines)
