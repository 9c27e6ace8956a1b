"""What every dataset hands the trainer: batches of (images, labels), with their order and augmentation
drawn from ``(seed, epoch, step)`` so that a resumed run sees the data an uninterrupted one would."""
from __future__ import annotations

import math
from typing import Tuple

import torch

Batch = Tuple[torch.Tensor, torch.Tensor]


def epoch_generator(seed: int, epoch: int, step: int = -1) -> torch.Generator:
    """Randomness of one epoch (data order) or of one step in it (augmentation): a resumed run can
    start mid-epoch and draw exactly what an uninterrupted run would."""
    return torch.Generator().manual_seed((seed * 100_003 + epoch) * 1_000_003 + step + 1)


class Batched:
    """What the trainer needs of any dataset besides its batches: its size and steps per epoch."""
    batch_size: int
    drop_last: bool

    @property
    def num_train(self) -> int:
        raise NotImplementedError

    @property
    def steps_per_epoch(self) -> int:
        n, b = self.num_train, self.batch_size
        return n // b if self.drop_last else math.ceil(n / b)
