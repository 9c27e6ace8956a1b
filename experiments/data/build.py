"""``data.name`` -> the dataset the trainer reads: a small set as tensors, or ImageNet-style folders."""
from __future__ import annotations

import torch
from omegaconf import DictConfig

from .batches import Batched


def build_data(dcfg: DictConfig, tcfg: DictConfig, seed: int, device: torch.device, rank: int = 0,
               world_size: int = 1) -> Batched:
    """Every dataset yields the same interface: ``train_batches(epoch, start)`` (order fixed by ``seed`` and
    ``epoch``, so a resumed run sees the data a fresh one would), ``val_batches()``, ``num_train``."""
    if dcfg.name == "imagenet":
        from .imagenet import build_imagenet  # torchvision/timm/PIL: only when asked for
        return build_imagenet(dcfg, tcfg, seed, rank, world_size)
    from .small import build_small
    return build_small(dcfg, tcfg, seed, device, rank, world_size)
