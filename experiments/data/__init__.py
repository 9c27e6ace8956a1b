"""Data sets: ``build_data(cfg.data, cfg.trainer, ...)`` for classification (``small``: Fashion-MNIST, CIFAR,
synthetic as tensors; ``imagenet``: folders through a DataLoader), and ``fashion_det``, the generator of the
synthetic detection set. All batching follows ``batches``."""
from .batches import Batch, Batched, epoch_generator
from .build import build_data

__all__ = ["Batch", "Batched", "build_data", "epoch_generator"]
