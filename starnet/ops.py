"""Fusion ops and activations: the one place where "star" and "sum" are defined.

A fusion op merges a block's two branches, ``op(act(x1), x2)``. DemoNet and StarNet both take
an op *name* and look it up here, so a new op is one function plus one ``@register_op`` line::

    @register_op("max")
    def max_fusion(a, b):
        return torch.maximum(a, b)

Every path runs it, the opt-in accelerated ones too (``starnet.accelerate``): the C++ fused MLP takes
an op by its ``kernel_code`` (the merges ``kernels/fused_mlp.py`` implements), and an op registered
without one runs as the plain PyTorch function there. The same holds for activations
(``ACT_KERNEL_CODES``, the activations ``kernels/_build.py`` implements).

This module imports torch and the kernels' code constants only (the layer above the kernels).
"""
from __future__ import annotations

from typing import Callable, Dict, Optional

import torch
from torch import nn

from .kernels._build import ACT_GELU, ACT_IDENTITY, ACT_RELU, ACT_RELU6
from .kernels.fused_mlp import OP_STAR, OP_SUM

FusionFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
FUSION_OPS: Dict[str, FusionFn] = {}
OP_KERNEL_CODES: Dict[str, int] = {}  # op name -> the code of the same merge in the C++ kernels


def register_op(name: str, kernel_code: Optional[int] = None) -> Callable[[FusionFn], FusionFn]:
    """Decorator that registers ``fn(a, b) -> Tensor`` under ``name``. ``kernel_code``: the C++ kernels'
    code for the same function (``kernels.fused_mlp.OP_*``), if they have it; without one the kernels
    leave the op to PyTorch."""
    if kernel_code is not None and (isinstance(kernel_code, bool) or not isinstance(kernel_code, int)):
        raise TypeError(f"kernel_code must be an int or None, got {kernel_code!r}")

    def add(fn: FusionFn) -> FusionFn:
        if name in FUSION_OPS:
            raise ValueError(f"fusion op '{name}' is already registered")
        FUSION_OPS[name] = fn
        OP_KERNEL_CODES.pop(name, None)
        if kernel_code is not None:
            OP_KERNEL_CODES[name] = kernel_code
        return fn
    return add


@register_op("star", kernel_code=OP_STAR)
def star(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The star operation of the paper: element-wise multiplication."""
    return a * b


@register_op("sum", kernel_code=OP_SUM)
def sum_(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The baseline: element-wise addition."""
    return a + b


def get_op(name: str) -> FusionFn:
    if name not in FUSION_OPS:
        raise ValueError(f"unknown op '{name}'; valid ops: {', '.join(sorted(FUSION_OPS))}")
    return FUSION_OPS[name]


def op_kernel_code(name: str) -> Optional[int]:
    """The C++ kernels' code for op ``name``, or None (then they leave it to PyTorch)."""
    return OP_KERNEL_CODES.get(name) if name in FUSION_OPS else None


class Fusion(nn.Module):
    """``op(a, b)`` as a module, so the op shows up in ``print(model)``."""

    def __init__(self, op: str):
        super().__init__()
        self.op = op
        self.fn = get_op(op)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.fn(a, b)

    @property
    def kernel_code(self) -> Optional[int]:
        return op_kernel_code(self.op)

    def extra_repr(self) -> str:
        return self.op


ACTIVATIONS: Dict[str, Callable[[], nn.Module]] = {
    "gelu": nn.GELU,
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "hardswish": nn.Hardswish,
    "none": nn.Identity,  # the activation-free ablation (paper Tables 4, 9)
}
# The activations the C++ kernels implement (``kernels/_build.py``); the others run as PyTorch's there.
ACT_KERNEL_CODES: Dict[str, int] = {"none": ACT_IDENTITY, "relu": ACT_RELU, "relu6": ACT_RELU6}
# DemoNet's block kernel (``kernels/demo_block.py``) also has GELU.
BLOCK_ACT_KERNEL_CODES: Dict[str, int] = {**ACT_KERNEL_CODES, "gelu": ACT_GELU}


def make_act(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation '{name}'; valid: {', '.join(sorted(ACTIVATIONS))}")
    return ACTIVATIONS[name]()


def act_kernel_code(name: str) -> Optional[int]:
    """The C++ kernels' code for activation ``name``, or None (then they leave it to PyTorch)."""
    return ACT_KERNEL_CODES.get(name)


def block_act_kernel_code(name: str) -> Optional[int]:
    """The DemoNet block kernel's code for activation ``name``, or None (then the block runs as PyTorch's)."""
    return BLOCK_ACT_KERNEL_CODES.get(name)


_COMPILED: Dict[tuple, FusionFn] = {}


def act_then_op(act_name: str, act: nn.Module, fusion: Fusion, a: torch.Tensor, b: torch.Tensor,
                compiled: bool = False) -> torch.Tensor:
    """``op(act(a), b)``: the blocks' branch merge, in one place for DemoNet and StarNet. ``compiled``
    (``accelerate(model, compile_branches=True)``): one compiled kernel (forward and backward) while
    training, instead of separate activation and op kernels with a tensor in between."""
    if compiled and torch.is_grad_enabled() and (a.requires_grad or b.requires_grad):
        op_fn = get_op(fusion.op)
        key = (act_name, fusion.op, op_fn)  # the function too: an op name registered again is another op
        fn = _COMPILED.get(key)
        if fn is None:  # one compiled function per (activation, op), shared by every block
            act_fn = make_act(act_name)
            fn = _COMPILED[key] = torch.compile(lambda x, y: op_fn(act_fn(x), y), dynamic=False)
        return fn(a, b)
    return fusion(act(a), b)


def check_positive_int(name: str, value) -> int:
    """Width/depth style arguments: a clear error instead of an empty or negative model."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_one_op(model: str, op) -> str:
    """An isotropic model (DemoNet) has one op for every block: a per-stage list is StarNet's."""
    if not isinstance(op, str):
        raise ValueError(f"{model} takes one op for all its blocks (e.g. op=star or op=sum), got {list(op)!r}; "
                         "a list of per-stage ops is for StarNet (model=starnet)")
    return op
