"""Training-mode BatchNorm (optionally followed by ReLU/ReLU6) as one CPU kernel for channels_last.

PyTorch's channels_last BatchNorm forward and backward, and the activation after it, each make their
own passes over the activation tensor; StarNet's stem alone (32x112x112 per image) spends more in them
than in its convolution (docs/performance.md). Here, over the (pixels x channels) rows:
forward = one pass for the per-channel sums, one pass writing ``act((x - mean) * scale + bias)``;
backward = one pass for the two per-channel gradient sums, one pass writing ``dx``, with the
activation's derivative taken from the saved output (ReLU6: ``0 < y < 6``, PyTorch's convention at
the kinks). Partial sums go per fixed chunk of rows (in double) and are added in chunk order, so
results do not depend on the thread count's scheduling.

Opt-in per model (``starnet.accelerate(model, fast_batchnorm=True)``; ``trainer.fast_batchnorm=true``),
built on first use (``_build.py``). Used by ``BatchNorm2d`` below (and StarNet's stem, with its
activation) for float32 channels_last CPU inputs in training mode; anything else (eval, NCHW, CUDA,
other dtypes, ``torch.compile``, TorchScript, an activation without a kernel code) runs PyTorch's. Outputs,
gradients and running statistics equal PyTorch's to float rounding
(``tests/starnet/kernels/test_fast_bn.py``). The C++ is ``csrc/fast_bn.cpp``.
"""
from __future__ import annotations

from typing import Optional

import torch

from ._build import build, source
from .accelerate import PLAIN
from .codes import ACTS


def extension():
    return build("starbench_fast_bn", source("fast_bn.cpp"), ["bn_forward", "bn_backward"])


class _BatchNormFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, eps: float, act: int):
        y, mean, var = extension().bn_forward(x, weight, bias, eps, act)
        ctx.save_for_backward(x, y if act else None, mean, var, weight)
        ctx.eps, ctx.act = eps, act
        return y, mean, var

    @staticmethod
    def backward(ctx, grad, _grad_mean, _grad_var):
        x, y, mean, var, weight = ctx.saved_tensors
        dx, dw, db = extension().bn_backward(grad.contiguous(), x, y if y is not None else x, mean, var, weight,
                                             ctx.eps, ctx.act)
        return dx, dw, db, None, None


def fast_batch_norm(bn: torch.nn.BatchNorm2d, x: torch.Tensor,
                    act: Optional[int] = ACTS["none"]) -> Optional[torch.Tensor]:
    """``act(bn(x))`` for a training-mode ``bn`` (running statistics updated as PyTorch does) through the
    kernel, ``act`` given by its kernel code (``starnet.ops.act_kernel_code``), or None where it does not
    apply (then the caller runs PyTorch's). Whether to try is the caller's choice (``bn.kernels``)."""
    if not (act is not None and bn.training and not isinstance(bn, torch.nn.SyncBatchNorm)  # DDP: cross-rank statistics
            and bn.track_running_stats and bn.affine and bn.momentum is not None
            and x.ndim == 4 and x.device.type == "cpu" and x.dtype == torch.float32
            and x.is_contiguous(memory_format=torch.channels_last) and x.numel() > x.shape[1]
            and not torch.compiler.is_compiling() and extension() is not None):
        return None
    n, c, h, w = x.shape
    rows = x.permute(0, 2, 3, 1).reshape(n * h * w, c).contiguous()  # a view (no copy) for channels_last
    y, mean, var = _BatchNormFn.apply(rows, bn.weight, bn.bias, bn.eps, act)
    with torch.no_grad():  # as F.batch_norm: unbiased variance into the running estimate
        m = rows.shape[0]
        bn.num_batches_tracked.add_(1)
        bn.running_mean.lerp_(mean, bn.momentum)
        bn.running_var.lerp_(var * (m / (m - 1)), bn.momentum)
    return y.view(n, h, w, c).permute(0, 3, 1, 2)  # channels_last again


class BatchNorm2d(torch.nn.BatchNorm2d):
    """``nn.BatchNorm2d`` (same parameters, buffers and state-dict keys) that trains through the
    fused kernel after ``starnet.accelerate(model, fast_batchnorm=True)``, where it applies."""

    kernels = PLAIN  # per module, set by accelerate(); the class default also covers modules pickled before it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting():  # the kernel is an autograd Function, which TorchScript does not compile
            return self._forward_scripted(x)
        y = fast_batch_norm(self, x) if self.kernels.fast_batchnorm else None
        return super().forward(x) if y is None else y

    def _forward_scripted(self, x: torch.Tensor) -> torch.Tensor:
        """``nn.BatchNorm2d.forward`` restated for TorchScript, which cannot call ``super().forward`` from a
        subclass: the same ``F.batch_norm`` call and running-statistics update, in train and eval mode."""
        self._check_input_dim(x)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # a cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked)
        batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        tracked = not self.training or self.track_running_stats  # else the buffers are left as they are
        return torch.nn.functional.batch_norm(x, self.running_mean if tracked else None,
                                              self.running_var if tracked else None, self.weight, self.bias,
                                              batch_stats, momentum, self.eps)
