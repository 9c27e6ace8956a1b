"""StarNet's block MLP ``g(op(act(f1(x)), f2(x)))`` as one CPU kernel, forward and backward.

Unfused, every block writes and rereads four tensors ``mlp_ratio`` times wider than its input (f1's
and f2's outputs, their merge, and the gradients of each). In the first two stages (24 and 48
channels at 56x56 and 28x28) those GEMMs have so few input channels that the step is bound by that
memory traffic, not by arithmetic (docs/performance.md). Here the MLP runs over tiles of pixels
whose wide intermediates stay in cache: per tile, ``h = x [w1; w2]^T + b`` (one GEMM for both
branches), ``z = op(act(h1), h2)``, ``out = z wg^T + bg``; the backward recomputes ``h`` and ``z``
per tile instead of storing them, and sums the weight gradients per thread. g's BatchNorm (which
needs statistics over the whole batch) runs after it, as PyTorch's.

Opt-in per model (``starnet.accelerate(model, fused_mlp=True)``; ``trainer.fused_mlp=true``), built on
first use (``_build.py``). Used for float32 channels_last CPU inputs while gradients are on, for the ops
and activations with a kernel code (``starnet.ops``: ``star``/``sum``; ``relu6``/``relu``/``none``) and
for blocks narrower than ``MAX_CHANNELS`` (wider ones are compute-bound and PyTorch's GEMMs are as fast);
anything else takes the unfused path. Outputs and gradients equal the unfused path's to float rounding
(``tests/starnet/kernels/test_fused_mlp.py``). The kernel takes codes, not names (``codes.OPS``, ``codes.ACTS``;
an op registered with ``starnet.ops.register_op(name, kernel_code=...)`` too). The C++ is ``csrc/fused_mlp.cpp``.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ._build import build, source

MAX_CHANNELS = 64  # measured per block fwd+bwd: fused ~1.8x / ~1.4x faster at 24 / 48 channels, slower at 96 and 192
TILE_FLOATS = 1 << 19  # rows per tile: the (rows x 2*hidden) intermediate fills ~2 MB (this CPU: 1 MB L2/core)


def extension():
    return build("starbench_fused_mlp", source("fused_mlp.cpp"), ["mlp_forward", "mlp_backward"])


def tile_rows(hidden: int) -> int:
    rows = 128
    while rows * 2 <= 4096 and rows * 2 * 2 * hidden <= TILE_FLOATS:
        rows *= 2
    return rows


class _FusedMLPFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w12, b12, wg, bg, act: int, op: int, tile: int):
        ctx.save_for_backward(x, w12, b12, wg)
        ctx.act, ctx.op, ctx.tile = act, op, tile
        return extension().mlp_forward(x, w12, b12, wg, bg, act, op, tile)

    @staticmethod
    def backward(ctx, grad):
        x, w12, b12, wg = ctx.saved_tensors
        dx, dw12, db12, dwg, dbg = extension().mlp_backward(grad.contiguous(), x, w12, b12, wg,
                                                             ctx.act, ctx.op, ctx.tile)
        return dx, dw12, db12, dwg, dbg, None, None, None


def fused_mlp(x: torch.Tensor, f1: nn.Conv2d, f2: nn.Conv2d, g: nn.Conv2d, act: Optional[int],
              op: Optional[int], tile: int = None):
    """``g(op(act(f1(x)), f2(x)))`` (1x1 convs with biases) through the fused kernel, ``act`` and ``op``
    given by their kernel codes (None: the registry has none), or None where it does not apply (then the
    caller runs the unfused modules)."""
    c = x.shape[1] if x.ndim == 4 else 0
    if not (act is not None and op is not None and torch.is_grad_enabled() and 0 < c < MAX_CHANNELS
            and x.device.type == "cpu" and x.dtype == torch.float32
            and x.is_contiguous(memory_format=torch.channels_last)
            and f1.bias is not None and f2.bias is not None and g.bias is not None
            and f1.out_channels == f2.out_channels == g.in_channels  # an element-wise merge of equal branches
            and not torch.compiler.is_compiling() and extension() is not None):
        return None
    n, _, h, w = x.shape
    hidden = f1.out_channels
    rows = x.permute(0, 2, 3, 1).reshape(n * h * w, c)  # a view: channels_last is pixels x channels
    w12 = torch.cat([f1.weight, f2.weight]).view(2 * hidden, c)
    b12 = torch.cat([f1.bias, f2.bias])
    out = _FusedMLPFn.apply(rows, w12, b12, g.weight.view(g.out_channels, hidden), g.bias, act, op,
                            tile or tile_rows(hidden))
    return out.view(n, h, w, g.out_channels).permute(0, 3, 1, 2)  # channels_last again
