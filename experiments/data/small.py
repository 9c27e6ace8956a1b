"""Small sets (Fashion-MNIST, CIFAR, synthetic): normalised tensors on the device, batched by indexing
with no per-sample Python. ``data.train_size``/``data.val_size`` take deterministic subsets;
``data.val_from=train`` holds a validation split out of the training set.
"""
from __future__ import annotations

import gzip
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from ..errors import StarbenchError
from .batches import Batch, Batched, epoch_generator

log = logging.getLogger("starbench")

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
# conf/data/fashion_mnist.yaml's root: the one root that falls back to Debian's copy. A root the user gave is
# looked in alone, and is an error when it does not exist.
DEFAULT_FASHION_ROOT = Path("data/fashion_mnist")


def is_default_root(root) -> bool:
    """``root`` is conf's default Fashion-MNIST root (as written, or the same folder)."""
    return Path(root).expanduser().resolve() == DEFAULT_FASHION_ROOT.resolve()


@dataclass
class TensorData(Batched):
    """A dataset held in memory: images (N, C, H, W) normalised float32, labels int64."""
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    num_classes: int
    batch_size: int
    eval_batch_size: int
    seed: int
    augment: bool = False
    drop_last: bool = False
    rank: int = 0          # DDP: this process trains on slice [rank::world_size] of every batch
    world_size: int = 1

    @property
    def num_train(self) -> int:
        return len(self.y_train)

    def train_batches(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """Batches ``start, start+1, ...`` of ``epoch``."""
        order = torch.randperm(self.num_train, generator=epoch_generator(self.seed, epoch)).to(self.x_train.device)
        for i in range(start, self.steps_per_epoch):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x, y = self.x_train[idx], self.y_train[idx]
            if self.augment:  # drawn for the whole batch: any number of ranks sees the same augmentation
                x = random_crop_flip(x, pad=max(1, x.shape[-1] // 14), generator=epoch_generator(self.seed, epoch, i))
            yield x[self.rank::self.world_size], y[self.rank::self.world_size]

    def val_batches(self) -> Iterator[Batch]:
        x_val, y_val = self.x_val[self.rank::self.world_size], self.y_val[self.rank::self.world_size]
        for i in range(0, len(y_val), self.eval_batch_size):
            yield x_val[i:i + self.eval_batch_size], y_val[i:i + self.eval_batch_size]


def random_crop_flip(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Per-sample random translation by up to ``pad`` pixels (zero fill) and horizontal flip."""
    n, _, h, w = x.shape
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = (dy[:, None] + torch.arange(h, device=x.device))                       # (n, h)
    cols = dx[:, None] + torch.arange(w, device=x.device)                          # (n, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    x = padded.gather(2, rows[:, None, :, None].expand(n, x.shape[1], h, padded.shape[-1]))
    return x.gather(3, cols[:, None, None, :].expand(n, x.shape[1], h, w))


def _subset(x: torch.Tensor, y: torch.Tensor, size: Optional[int], what: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """A deterministic subset (the same for every run seed, so seeds differ only in training noise)."""
    if size is None:  # (a positive size is checked with the other settings: classify.check_settings)
        return x, y
    if size > len(y):
        raise StarbenchError(f"{what}={size} but the dataset has only {len(y)} images")
    idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))[:size]
    return x[idx], y[idx]


def holdout_split(x: torch.Tensor, y: torch.Tensor, size: Optional[int]) -> Tuple[torch.Tensor, ...]:
    """``size`` training images set aside as the validation set (the same ones for every run seed and
    every ``train_size``: knobs are chosen on them, never on the test set); the rest stay for training."""
    if size is None:
        raise StarbenchError("data.val_from=train needs data.val_size (the number of training images to hold out)")
    if size >= len(y):
        raise StarbenchError(f"data.val_size={size} but the training set has only {len(y)} images")
    idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(1))
    held, rest = idx[:size], idx[size:]
    return x[rest], y[rest], x[held], y[held]


def _prepare(x: torch.Tensor, dcfg: DictConfig) -> torch.Tensor:
    """uint8/float (N, C, H, W) -> normalised float32 at the configured image size."""
    x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
    if x.shape[-1] != dcfg.image_size:
        x = F.interpolate(x, size=(dcfg.image_size, dcfg.image_size), mode="bilinear", align_corners=False)
    mean = torch.tensor(dcfg.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(dcfg.std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x - mean) / std


# --- Fashion-MNIST -----------------------------------------------------------------------------

FASHION_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                 "val": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped): the MNIST family's raw format."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise StarbenchError(f"{path} is not an IDX file of unsigned bytes (corrupt download?)")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise StarbenchError(f"{path} is truncated: expected {int(np.prod(shape))} values, found {arr.size}")
    return arr.reshape(shape)


def _find_idx(dirs: Sequence[Path], stem: str) -> Optional[Path]:
    for d in dirs:
        for name in (stem, stem + ".gz"):
            if (d / name).is_file():
                return d / name
    return None


def find_fashion_mnist(root: Path) -> Optional[Path]:
    """The first directory that holds all four Fashion-MNIST files: in ``root``, and in Debian's copy only when
    ``root`` is the default one."""
    fallback = (DEBIAN_FASHION_MNIST,) if is_default_root(root) else ()
    for d in (root, root / "FashionMNIST" / "raw", *fallback):
        if all(_find_idx([d], stem) for pair in FASHION_FILES.values() for stem in pair):
            return d
    return None


def check_fashion_root(root, download: bool) -> None:
    """A ``data.root`` the user gave that does not exist is an error, not a silent fallback to Debian's copy, and
    not a folder torchvision creates to download into: checked before a run dir exists
    (``tasks.classify.check_settings``) and again when the data load."""
    root = Path(root).expanduser()
    if is_default_root(root) or root.is_dir():
        return
    then = ("create it (mkdir) to download Fashion-MNIST into it" if download else
            "put the four idx files in it")
    raise StarbenchError(f"Fashion-MNIST not found: data.root {root} does not exist (Debian's copy in "
                         f"{DEBIAN_FASHION_MNIST} stands in only for the default data.root {DEFAULT_FASHION_ROOT}); "
                         f"{then}, or leave data.root at its default")


def _download_fashion_mnist(root: Path) -> Optional[str]:
    """torchvision's download into ``root`` (an existing folder, or the default root); None, or why it failed in one
    line (torchvision prints each mirror it tries: kept off the console, the reason is in the error)."""
    import contextlib
    import io
    from torchvision.datasets import FashionMNIST
    log.info("Fashion-MNIST: downloading into %s", root)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            FashionMNIST(str(root), download=True)
    except Exception as e:  # no network
        return " ".join(str(e).split()) or type(e).__name__
    return None


def load_fashion_mnist(dcfg: DictConfig) -> Tuple[torch.Tensor, ...]:
    root = Path(dcfg.root).expanduser()
    check_fashion_root(root, dcfg.download)
    found = find_fashion_mnist(root)
    failed = None
    if found is None and dcfg.download:
        failed = _download_fashion_mnist(root)
        found = find_fashion_mnist(root)
    if found is None:
        why = f" ({failed})" if failed else ""
        if is_default_root(root):
            raise StarbenchError(
                f"Fashion-MNIST not found in {root} or {DEBIAN_FASHION_MNIST} and could not be downloaded{why}; "
                "install it with `apt-get install dataset-fashion-mnist` or set data.root to a folder with the idx "
                "files")
        raise StarbenchError(
            f"Fashion-MNIST not found in data.root {root} and could not be downloaded{why}; put its idx files "
            f"there ({', '.join(FASHION_FILES['train'])}, ...), or leave data.root at its default to read Debian's "
            f"dataset-fashion-mnist from {DEBIAN_FASHION_MNIST}")
    out = []
    for images, labels in FASHION_FILES.values():
        x = torch.from_numpy(read_idx(_find_idx([found], images)).copy()).unsqueeze(1)
        y = torch.from_numpy(read_idx(_find_idx([found], labels)).astype(np.int64))
        out += [x, y]
    log.info("Fashion-MNIST from %s", found)
    return tuple(out)


def load_cifar(dcfg: DictConfig) -> Tuple[torch.Tensor, ...]:
    from torchvision import datasets
    cls = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[dcfg.name]
    root = Path(dcfg.root).expanduser()
    if not dcfg.download and not root.is_dir():  # torchvision would create the empty folder first
        raise StarbenchError(f"{dcfg.name} not found: {dcfg.root} does not exist; set data.root to a folder "
                             "holding the torchvision copy, or data.download=true")
    out = []
    for train in (True, False):
        try:
            ds = cls(str(root), train=train, download=dcfg.download)
        except Exception as e:
            tried = "and could not be downloaded" if dcfg.download else "(data.download=false)"
            raise StarbenchError(f"{dcfg.name} not found in {dcfg.root} {tried}: "
                                 f"{' '.join(str(e).split())}; set data.root to a folder holding the "
                                 "torchvision copy") from None
        out += [torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(ds.targets)]
    return tuple(out)


def make_synthetic(dcfg: DictConfig) -> Tuple[torch.Tensor, ...]:
    """Each class is a smooth random template; samples are shifted, noisy copies. Learnable, not trivial."""
    g = torch.Generator().manual_seed(1234)
    c, s, k = dcfg.in_chans, dcfg.image_size, dcfg.num_classes
    templates = F.interpolate(torch.randn(k, c, 4, 4, generator=g), size=(s, s), mode="bilinear",
                              align_corners=False)

    def sample(n: int) -> Tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(n) % k
        x = templates[y] + dcfg.noise * torch.randn(n, c, s, s, generator=g)
        shifts = torch.randint(-2, 3, (n, 2), generator=g)
        x = torch.stack([xi.roll(tuple(sh.tolist()), dims=(1, 2)) for xi, sh in zip(x, shifts)])
        return x, y

    held_out = dcfg.val_size if dcfg.get("val_from", "test") == "train" else 0  # held out of the training draw
    return (*sample(dcfg.train_size + held_out), *sample(dcfg.val_size))


def pair_items(x: torch.Tensor, y: torch.Tensor, seed: int, classes: int = 10) -> Tuple[torch.Tensor, torch.Tensor]:
    """The pair task: item i and item perm(i) of the same split as the two channels of one image, labelled by both
    classes (``classes`` x first + second: 100 classes from Fashion-MNIST's 10). ``perm`` is drawn from ``seed`` alone, so every run and op
    sees the same pairs, and each image is once a first and once a second item. A linear classifier can only add a
    score for each item; telling 100 conjunctions apart at once leaves room above it."""
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    return torch.cat([x, x[perm]], dim=1), y.long() * classes + y[perm].long()


LOADERS = {"fashion_mnist": load_fashion_mnist, "fashion_pairs": load_fashion_mnist, "cifar10": load_cifar,
           "cifar100": load_cifar, "synthetic": make_synthetic}
# Tasks built from a loaded set split by split, after the held-out split: no image is in two splits.
SPLIT_TASKS = {"fashion_pairs": lambda x, y, dcfg: pair_items(x, y, dcfg.seed, math.isqrt(dcfg.num_classes))}


def build_small(dcfg: DictConfig, tcfg: DictConfig, seed: int, device: torch.device, rank: int = 0,
                world_size: int = 1) -> TensorData:
    """A small set (``LOADERS``) as a ``TensorData`` on ``device``."""
    if dcfg.name not in LOADERS:
        raise StarbenchError(f"unknown dataset '{dcfg.name}'; valid: {', '.join([*LOADERS, 'imagenet'])}")
    val_from = dcfg.get("val_from", "test")
    if val_from not in ("test", "train"):
        raise StarbenchError(f"data.val_from must be test or train, got {val_from!r}")
    x_tr, y_tr, x_va, y_va = LOADERS[dcfg.name](dcfg)
    if val_from == "train":  # a validation split carved from the training set: the test set stays unseen
        x_tr, y_tr, x_va, y_va = holdout_split(x_tr, y_tr, dcfg.val_size)
    if dcfg.name in SPLIT_TASKS:
        (x_tr, y_tr), (x_va, y_va) = (SPLIT_TASKS[dcfg.name](x, y, dcfg) for x, y in ((x_tr, y_tr), (x_va, y_va)))
    if dcfg.name != "synthetic":  # synthetic data is drawn at exactly its sizes
        x_tr, y_tr = _subset(x_tr, y_tr, dcfg.train_size, "data.train_size")
        if val_from == "test":
            x_va, y_va = _subset(x_va, y_va, dcfg.val_size, "data.val_size")
    return TensorData(
        name=dcfg.name, x_train=_prepare(x_tr, dcfg).to(device), y_train=y_tr.long().to(device),
        x_val=_prepare(x_va, dcfg).to(device), y_val=y_va.long().to(device), num_classes=dcfg.num_classes,
        batch_size=tcfg.batch_size, eval_batch_size=tcfg.eval_batch_size, seed=seed,
        augment=bool(dcfg.get("augment", False)), drop_last=bool(tcfg.mixup or tcfg.cutmix) or world_size > 1,
        rank=rank, world_size=world_size)
