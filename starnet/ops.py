"""Fusion ops and activations: the one place where "star" and "sum" are defined.

A fusion op merges a block's two branches, ``op(act(x1), x2)``. DemoNet and StarNet both take
an op *name* and look it up here, so a new op is one function plus one ``@register_op`` line::

    @register_op("max")
    def max_fusion(a, b):
        return torch.maximum(a, b)
"""
from __future__ import annotations

from typing import Callable, Dict

import torch
from torch import nn

FusionFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
FUSION_OPS: Dict[str, FusionFn] = {}


def register_op(name: str) -> Callable[[FusionFn], FusionFn]:
    """Decorator that registers ``fn(a, b) -> Tensor`` under ``name``."""
    def add(fn: FusionFn) -> FusionFn:
        if name in FUSION_OPS:
            raise ValueError(f"fusion op '{name}' is already registered")
        FUSION_OPS[name] = fn
        return fn
    return add


@register_op("star")
def star(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The star operation of the paper: element-wise multiplication."""
    return a * b


@register_op("sum")
def sum_(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The baseline: element-wise addition."""
    return a + b


def get_op(name: str) -> FusionFn:
    if name not in FUSION_OPS:
        raise ValueError(f"unknown op '{name}'; valid ops: {', '.join(sorted(FUSION_OPS))}")
    return FUSION_OPS[name]


class Fusion(nn.Module):
    """``op(a, b)`` as a module, so the op shows up in ``print(model)``."""

    def __init__(self, op: str):
        super().__init__()
        self.op = op
        self.fn = get_op(op)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.fn(a, b)

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


def make_act(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation '{name}'; valid: {', '.join(sorted(ACTIVATIONS))}")
    return ACTIVATIONS[name]()


_compile_branches = False
_COMPILED: Dict[tuple, FusionFn] = {}


def use_compiled_branches(enabled: bool = True) -> None:
    """Run every block's ``op(act(x1), x2)`` as one compiled kernel (forward and backward) while
    training, instead of separate activation and op kernels with a tensor in between."""
    global _compile_branches
    _compile_branches = bool(enabled)


def act_then_op(act_name: str, act: nn.Module, fusion: Fusion, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``op(act(a), b)``: the blocks' branch merge, in one place for DemoNet and StarNet."""
    if _compile_branches and torch.is_grad_enabled() and (a.requires_grad or b.requires_grad):
        fn = _COMPILED.get((act_name, fusion.op))
        if fn is None:  # one compiled function per (activation, op), shared by every block
            act_fn, op_fn = make_act(act_name), get_op(fusion.op)
            fn = _COMPILED[(act_name, fusion.op)] = torch.compile(lambda x, y: op_fn(act_fn(x), y), dynamic=False)
        return fn(a, b)
    return fusion(act(a), b)


def check_positive_int(name: str, value) -> int:
    """Width/depth style arguments: a clear error instead of an empty or negative model."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value
