"""Small layers shared by DemoNet and StarNet (torch and the kernel-aware modules of ``kernels/``)."""
from __future__ import annotations

from typing import Any, Dict

import torch
from torch import nn

from .kernels.dwconv import depthwise
from .kernels.fast_bn import BatchNorm2d


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample (same maths as timm's DropPath)."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop_path must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty([x.shape[0]] + [1] * (x.ndim - 1)).bernoulli_(keep)  # a list: TorchScript repeats no tuple
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ConvBN(nn.Sequential):
    """Conv2d (with bias, as in the official code) optionally followed by BatchNorm2d.

    Submodule names ``conv``/``bn`` match the official and timm StarNet state dicts.
    """

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 1, stride: int = 1,
                 padding: int = 0, groups: int = 1, with_bn: bool = True, device=None, dtype=None):
        dd = {"device": device, "dtype": dtype}
        super().__init__()
        conv = depthwise(in_chs, out_chs, kernel_size, stride, padding, groups, **dd)  # same params as a Conv2d
        self.add_module("conv", conv or nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding, groups=groups,
                                                  **dd))
        if with_bn:
            self.add_module("bn", BatchNorm2d(out_chs, **dd))

    def norm(self, y: torch.Tensor) -> torch.Tensor:
        """The BatchNorm alone, for callers that ran ``conv`` themselves; identity once the BN has
        been folded into the conv (detector ``fuse()``) or when built without one."""
        return self.bn(y) if "bn" in self._modules else y


class GlobalPool(nn.Module):
    """timm's head pooling on an NCHW map, torch only: ``"avg"`` (mean over H, W, flattened to (B, C)),
    ``"max"``, or ``""`` (pass the map through unpooled). No parameters: state-dict keys are unaffected."""

    POOLS = ("avg", "max", "")

    def __init__(self, pool_type: str = "avg"):
        super().__init__()
        if pool_type not in self.POOLS:
            raise ValueError(f"unknown global_pool '{pool_type}'; valid: 'avg', 'max', ''")
        self.pool_type = pool_type

    def is_identity(self) -> bool:
        return self.pool_type == ""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool_type == "avg":
            return torch.flatten(x.mean((2, 3)), 1)
        if self.pool_type == "max":
            return torch.flatten(x.amax((2, 3)), 1)
        return x

    def extra_repr(self) -> str:
        return f"pool_type={self.pool_type!r}"


def take_indices(n: int, indices=None):
    """timm's ``feature_take_indices`` (torch only): ``None`` -> all ``n``, an int k -> the last k, a sequence ->
    those indices (negative from the end). Returns (sorted-as-given absolute indices, the largest)."""
    if indices is None:
        indices = n
    if isinstance(indices, int):
        if not 0 < indices <= n:
            raise ValueError(f"last-n ({indices}) is out of range (1 to {n})")
        taken = [n - indices + i for i in range(indices)]
    else:
        taken = []
        for i in indices:
            idx = n + i if i < 0 else i
            if not 0 <= idx < n:
                raise ValueError(f"feature index {idx} is out of range (0 to {n - 1})")
            taken.append(idx)
    return taken, max(taken)


def drop_path_rates(drop_path: float, n: int) -> list:
    """Linearly increasing stochastic-depth rates, 0 for the first block (paper/timm schedule)."""
    # on the CPU whatever the default device: .item() of a meta tensor (create_model(device="meta")) has no value
    return [x.item() for x in torch.linspace(0, drop_path, n, device="cpu")] if n else []


class TimmApiDefaults:
    """Mixin for the models' ``__setstate__``: a model pickled before the timm API (``torch.save(model)``)
    gets that API's attributes' defaults when loaded. Each model says its feature_info in
    ``_pickled_feature_info()``."""

    def __setstate__(self, state: Dict[str, Any]) -> None:
        super().__setstate__(state)
        if "global_pool" not in self._modules:
            self.global_pool = GlobalPool("avg")
        self.__dict__.setdefault("drop_rate", 0.0)
        self.__dict__.setdefault("head_hidden_size", self.num_features)
        if "feature_info" not in self.__dict__:
            self.feature_info = self._pickled_feature_info()
