"""ImageNet-style folders (``<root>/train/<class>/*``, ``<root>/val/<class>/*``) through a DataLoader
with workers and timm's transforms (RandAugment, color jitter, random erasing as in Tables 10/12)."""
from __future__ import annotations

import logging
import multiprocessing
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Dataset

from ..errors import StarbenchError
from .batches import Batch, Batched, epoch_generator

log = logging.getLogger("starbench")


def _posterize_zero_bits_as_black() -> None:
    """timm's RandAugment 'PosterizeIncreasing' (in the paper's rand-m9-mstd0.5-inc1) can ask for 0 bits;
    Pillow < 13 returned a black image for that, Pillow 13 raises ValueError mid-epoch. Keep the old
    result so the paper's recipe runs unchanged."""
    from PIL import Image
    from timm.data import auto_augment

    original = auto_augment.posterize
    if getattr(original, "zero_bits_safe", False):
        return

    def posterize(img, bits_to_keep, **kwargs):
        if bits_to_keep <= 0:
            return Image.new(img.mode, img.size)
        return original(img, bits_to_keep, **kwargs)

    posterize.zero_bits_safe = True
    auto_augment.posterize = posterize
    for name, op in list(auto_augment.NAME_TO_OP.items()):
        if op is original:
            auto_augment.NAME_TO_OP[name] = posterize


def _image_folder(path: Path, transform):
    from torchvision.datasets import ImageFolder

    class SkippingImageFolder(ImageFolder):
        """An unreadable image is skipped (the next one stands in, so batches keep their size), logged
        and counted in ``corrupt`` (shared with the DataLoader's worker processes)."""

        corrupt = multiprocessing.Value("i", 0)

        def __getitem__(self, index):
            for offset in range(len(self)):
                path, target = self.samples[(index + offset) % len(self)]
                try:
                    image = self.loader(path)
                except (OSError, ValueError, SyntaxError) as e:  # what PIL raises for broken files
                    with self.corrupt.get_lock():
                        self.corrupt.value += 1
                    log.warning("skipping unreadable image %s (%s)", path, e)
                    continue
                return self.transform(image), target
            raise StarbenchError(f"no readable image in {self.root}")

    if not path.is_dir():
        raise StarbenchError(f"ImageNet folder {path} does not exist (expected <data.root>/train and <data.root>/val)")
    try:
        return SkippingImageFolder(str(path), transform=transform)
    except (FileNotFoundError, RuntimeError) as e:
        raise StarbenchError(f"no images found in {path}: {e}") from None


@dataclass
class LoaderData(Batched):
    name: str
    train_set: Dataset
    val_set: Dataset
    num_classes: int
    batch_size: int
    eval_batch_size: int
    seed: int
    workers: int
    drop_last: bool = True
    rank: int = 0          # DDP: this process loads slice [rank::world_size] of every batch
    world_size: int = 1

    @property
    def num_train(self) -> int:
        return len(self.train_set)

    @property
    def corrupt_images(self) -> int:
        """Unreadable images skipped so far (each time one was met)."""
        return self.train_set.corrupt.value + self.val_set.corrupt.value


    def _loader(self, ds, batch_size, sampler=None, generator=None, drop_last=False):
        return DataLoader(ds, batch_size=batch_size, sampler=sampler, generator=generator, drop_last=drop_last,
                          num_workers=self.workers, pin_memory=torch.cuda.is_available(),
                          persistent_workers=False)

    def train_batches(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """Batches ``start, ...`` of ``epoch``: the epoch's order is fixed by seed and epoch."""
        g = epoch_generator(self.seed, epoch)
        b, w = self.batch_size, self.world_size
        order = torch.randperm(self.num_train, generator=g)[start * b:self.steps_per_epoch * b]
        mine = order.view(-1, b)[:, self.rank::w].flatten().tolist()  # this rank's slice of each batch
        return iter(self._loader(self.train_set, b // w, mine, g, self.drop_last))

    def val_batches(self) -> Iterator[Batch]:
        mine = list(range(self.rank, len(self.val_set), self.world_size))
        return iter(self._loader(self.val_set, self.eval_batch_size, mine))


def build_imagenet(dcfg: DictConfig, tcfg: DictConfig, seed: int, rank: int = 0, world_size: int = 1) -> LoaderData:
    from timm.data import create_transform
    _posterize_zero_bits_as_black()
    root = Path(str(dcfg.root)).expanduser()
    common = dict(input_size=dcfg.image_size, mean=tuple(dcfg.mean), std=tuple(dcfg.std),
                  interpolation=dcfg.interpolation)
    train_tf = create_transform(is_training=True, auto_augment=dcfg.auto_augment or None,
                                color_jitter=dcfg.color_jitter, re_prob=dcfg.reprob, **common)
    val_tf = create_transform(is_training=False, crop_pct=dcfg.crop_pct, **common)
    train_set = _image_folder(root / "train", train_tf)
    val_set = _image_folder(root / "val", val_tf)
    if len(train_set.classes) != dcfg.num_classes:
        raise StarbenchError(f"{root / 'train'} has {len(train_set.classes)} classes but data.num_classes="
                             f"{dcfg.num_classes}")
    return LoaderData(dcfg.name, train_set, val_set, dcfg.num_classes, tcfg.batch_size, tcfg.eval_batch_size,
                      seed, dcfg.workers, drop_last=True, rank=rank, world_size=world_size)
