import gzip

import numpy as np
import pytest
import torch

from experiments.data.small import _subset, find_fashion_mnist, holdout_split, random_crop_flip, read_idx
from experiments.errors import StarbenchError


def write_idx(path, arr):
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_read_idx_roundtrip_and_corruption(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "x.gz", arr)
    assert np.array_equal(read_idx(tmp_path / "x.gz"), arr)
    with gzip.open(tmp_path / "bad.gz", "wb") as f:
        f.write(b"\x00\x00\x08\x01\x00\x00\x00\x09abc")  # says 9 values, holds 3
    with pytest.raises(StarbenchError, match="truncated"):
        read_idx(tmp_path / "bad.gz")


def test_fashion_mnist_found_in_configured_root(tmp_path):
    for stem, shape in [("train-images-idx3-ubyte", (3, 28, 28)), ("train-labels-idx1-ubyte", (3,)),
                        ("t10k-images-idx3-ubyte", (2, 28, 28)), ("t10k-labels-idx1-ubyte", (2,))]:
        write_idx(tmp_path / f"{stem}.gz", np.zeros(shape))
    assert find_fashion_mnist(tmp_path) == tmp_path


def test_subset_is_deterministic_and_checked():
    x, y = torch.arange(100).float(), torch.arange(100)
    a, b = _subset(x, y, 10, "data.train_size"), _subset(x, y, 10, "data.train_size")
    assert torch.equal(a[1], b[1]) and len(set(a[1].tolist())) == 10
    with pytest.raises(StarbenchError, match="only 100 images"):
        _subset(x, y, 101, "data.train_size")


def test_random_crop_flip_shifts_and_flips_whole_images():
    x = torch.arange(2 * 1 * 6 * 6).float().view(2, 1, 6, 6) + 1
    out = random_crop_flip(x, pad=2, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    for i in range(2):  # every output row is a (possibly flipped, shifted) piece of an input row
        values = set(out[i].flatten().tolist()) - {0.0}
        assert values <= set(x[i].flatten().tolist()) and values


def test_holdout_split_is_disjoint_fixed_and_checked():
    x = torch.arange(100).float().view(100, 1, 1, 1)
    y = torch.arange(100)
    x_tr, y_tr, x_va, y_va = holdout_split(x, y, 20)
    assert len(y_va) == 20 and len(y_tr) == 80
    assert set(y_tr.tolist()).isdisjoint(y_va.tolist()) and set(y_tr.tolist()) | set(y_va.tolist()) == set(range(100))
    assert torch.equal(holdout_split(x, y, 20)[3], y_va)  # the same images every run
    with pytest.raises(StarbenchError, match="needs data.val_size"):
        holdout_split(x, y, None)
    with pytest.raises(StarbenchError, match="only 100"):
        holdout_split(x, y, 100)


def test_synthetic_data_holds_its_validation_set_out_of_the_training_draw():
    from experiments.data.small import build_small
    from tests.conftest import compose_cfg
    for val_from in ("test", "train"):
        cfg = compose_cfg("data=synthetic", "data.train_size=64", "data.val_size=32", f"data.val_from={val_from}")
        data = build_small(cfg.data, cfg.trainer, 0, torch.device("cpu"))
        assert (len(data.y_train), len(data.y_val)) == (64, 32), val_from
    with pytest.raises(StarbenchError, match="data.val_from must be test or train"):
        cfg = compose_cfg("data=synthetic", "data.val_from=both")
        build_small(cfg.data, cfg.trainer, 0, torch.device("cpu"))


def test_pair_items_conjoins_two_items_of_one_split_as_channels():
    from experiments.data.small import pair_items
    x = torch.arange(12, dtype=torch.float32).view(12, 1, 1, 1).expand(12, 1, 2, 2).clone()
    y = torch.arange(12) % 10
    xp, yp = pair_items(x, y, seed=3)
    assert xp.shape == (12, 2, 2, 2)
    first, second = xp[:, 0, 0, 0].long(), xp[:, 1, 0, 0].long()
    assert torch.equal(first, torch.arange(12))                          # item i first ...
    assert sorted(second.tolist()) == list(range(12))                     # ... every item once second
    assert torch.equal(yp, y[first] * 10 + y[second])                     # labelled by both classes
    assert torch.equal(pair_items(x, y, seed=3)[0], xp) and not torch.equal(pair_items(x, y, seed=4)[0], xp)


def test_pair_task_pairs_each_split_within_itself(tmp_path):
    from experiments.data.small import build_small
    from tests.conftest import compose_cfg
    n_train, n_test = 40, 20
    for stem, arr in [("train-images-idx3-ubyte", np.arange(n_train)[:, None, None] * np.ones((1, 28, 28))),
                      ("train-labels-idx1-ubyte", np.arange(n_train) % 10),
                      ("t10k-images-idx3-ubyte", (100 + np.arange(n_test))[:, None, None] * np.ones((1, 28, 28))),
                      ("t10k-labels-idx1-ubyte", np.arange(n_test) % 10)]:
        write_idx(tmp_path / f"{stem}.gz", arr)
    cfg = compose_cfg("data=fashion_pairs", f"data.root={tmp_path}", "data.download=false", "data.val_from=train",
                      "data.val_size=10", "data.train_size=30", "data.mean=[0,0]", "data.std=[1,1]")
    data = build_small(cfg.data, cfg.trainer, 0, torch.device("cpu"))
    assert data.x_train.shape[1:] == (2, 28, 28) and data.num_classes == 100
    ids = lambda x: set((x[:, :, 0, 0] * 255).round().long().flatten().tolist())  # noqa: E731  (pixel = image id)
    assert len(data.y_train) == 30 and len(data.y_val) == 10
    assert not ids(data.x_train) & ids(data.x_val)                       # no image in two splits
    assert int(data.y_train.max()) < 100
    cfg = compose_cfg("data=fashion_pairs", f"data.root={tmp_path}", "data.download=false", "data.mean=[0,0]",
                      "data.std=[1,1]")
    test = build_small(cfg.data, cfg.trainer, 0, torch.device("cpu"))
    assert ids(test.x_val) == set(range(100, 100 + n_test))             # test pairs from test images only
