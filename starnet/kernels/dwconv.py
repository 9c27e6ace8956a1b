"""A faster CPU backward for 7x7 depthwise convolutions (the bound of StarNet training on CPU).

PyTorch's CPU depthwise-conv backward spends 10-15x the forward's time on the *weight* gradient
(docs/performance.md). Here the weight gradient is one small C++ kernel: per channel block of 8,
``grad_w[c, ky, kx] = sum_{b,y,x} x[b, y+ky-p, x+kx-p, c] * grad_out[b, y, x, c]`` with the partial sums
in registers, over channels_last memory. The input gradient and the forward stay PyTorch's own.

Opt-in per model (``starnet.accelerate(model, fast_dwconv=True)``; ``trainer.fast_dwconv=true``): the
kernel is compiled on first use (``_build.py``). Where it cannot be built, or the input is not a float32
channels_last CPU tensor, or the module is scripted (TorchScript), the native path runs. The C++ is
``csrc/dwconv.cpp``.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ._build import build, source
from .accelerate import PLAIN


def extension():
    """The compiled kernel, or None where it cannot be built."""
    return build("starbench_dwconv", source("dwconv.cpp"), ["dw_weight_grad"])


class _DepthwiseConvFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, padding: int):
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias, 1, padding, 1, weight.shape[0])

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad = grad.contiguous(memory_format=torch.channels_last)
        c, p = weight.shape[0], ctx.padding
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_input = torch.ops.aten.convolution_backward(
                grad, x, weight, [c], [1, 1], [p, p], [1, 1], False, [0, 0], c, [True, False, False])[0]
        if ctx.needs_input_grad[1]:
            grad_weight = extension().dw_weight_grad(x, grad, weight.shape[-1]).to(weight.dtype)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad.sum((0, 2, 3))
        return grad_input, grad_weight, grad_bias, None


class DepthwiseConv2d(nn.Conv2d):
    """``nn.Conv2d(dim, dim, k, padding=k // 2, groups=dim)`` (same parameters and state dict) whose
    weight gradient uses the C++ kernel after ``starnet.accelerate(model, fast_dwconv=True)``."""

    kernels = PLAIN  # per module, set by accelerate(); the class default also covers modules pickled before it

    def __init__(self, dim: int, kernel_size: int = 7, bias: bool = True, device=None, dtype=None):
        super().__init__(dim, dim, kernel_size, 1, kernel_size // 2, groups=dim, bias=bias, device=device,
                         dtype=dtype)

    def _fast(self, x: torch.Tensor) -> bool:
        return (self.kernels.fast_dwconv and torch.is_grad_enabled() and x.device.type == "cpu"
                and x.dtype == torch.float32 and self.weight.requires_grad
                and x.is_contiguous(memory_format=torch.channels_last)
                and extension() is not None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():  # the kernel is an autograd Function, which TorchScript does not compile
            if self._fast(x):
                return _DepthwiseConvFn.apply(x, self.weight, self.bias, self.padding[0])
        return self._conv_forward(x, self.weight, self.bias)  # nn.Conv2d.forward (TorchScript has no super())


def depthwise(in_chs: int, out_chs: int, kernel_size: int, stride: int, padding: int,
              groups: int, device=None, dtype=None) -> Optional[DepthwiseConv2d]:
    """A DepthwiseConv2d where these Conv2d arguments describe one (stride 1, same padding), else None."""
    if in_chs == out_chs == groups and stride == 1 and kernel_size % 2 == 1 and padding == kernel_size // 2:
        return DepthwiseConv2d(in_chs, kernel_size, device=device, dtype=dtype)
    return None
