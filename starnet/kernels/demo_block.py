"""DemoNet's whole block, ``x + gamma * g(op(act(f(dwconv(norm(x))))))``, as one CPU kernel, forward and backward.

At DemoNet's science sizes (widths 8-64 on 7x7 or 14x14 tokens) a block is a chain of small ops: LayerNorm,
the 7x7 depthwise conv (with permutes around it), a d->6d GEMM, the activation, the op, a 3d->d GEMM, the
layer scale and the residual, each a pass over memory and a dispatch, twice as many in the backward. The
step is bound by those, not by arithmetic (docs/performance.md). Here a block runs over tiles of
whole images (the depthwise conv only mixes tokens of one image), so every intermediate stays in cache:
per tile, LayerNorm, the depthwise conv as a direct loop over channel vectors, ``u wf^T`` and ``z wg^T`` as
ATen GEMMs (their biases added in the loops that read the GEMMs' outputs: one pass less over each), GELU with
the erf approximation of ATen's vectorised kernel, fused with the op.
The forward keeps what the backward needs (the conv output ``u``, f's output ``h``, g's output ``o``, the
LayerNorm statistics: less than the plain block keeps); the backward recomputes the activation and the op
per tile and sums weight gradients per thread.

Per model (``starnet.accelerate(model, fused_block=True)``; ``trainer.fused_block``, on by default in the
trainer), built on first use (``_build.py``). Used for float32 CPU inputs while gradients are on, for ops and
activations with a code in this kernel (``codes.BLOCK_OPS``, ``codes.BLOCK_ACTS``: star, sum; gelu, none, relu,
relu6; and in a second build, ``extension(zoo=True)``, max, gate and silu) and blocks without an active drop path;
anything else takes the plain modules. Outputs and gradients equal the plain block's to float rounding
(``tests/starnet/kernels/test_demo_block.py``). The C++ is ``csrc/demo_block.cpp``.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ._build import build, source
from .codes import ZOO_ACT_CODES, ZOO_OP_CODES

TILE_FLOATS = 1 << 16  # images per tile: the (tokens x 6C) intermediate fills ~256 KB, and with the rest of a
                       # tile's buffers the L2 (measured at w16 on 7x7 tokens: 8-16 images best; 55 ~25% slower)


def uses_zoo(act: int, op: int) -> bool:
    """Whether the kernel codes ``act``, ``op`` need the zoo build (``extension(zoo=True)``)."""
    return op in ZOO_OP_CODES or act in ZOO_ACT_CODES


def build_block(name: str, source: str, zoo: bool = False):
    """The block kernel compiled from ``source`` as ``name``, or with ``zoo`` its second build (``source`` with
    STARBENCH_ZOO defined, as ``name``_zoo). Also builds an older revision's source beside this one's (the step
    benchmark's ``--kernel-rev``)."""
    if zoo:
        return build(name + "_zoo", "#define STARBENCH_ZOO\n" + source, ["block_forward", "block_backward"])
    return build(name, source, ["block_forward", "block_backward"])


def extension(zoo: bool = False):
    """The compiled kernel: star and sum with gelu, none, relu, relu6; ``zoo``: its second build, which also has max,
    gate and SiLU (the same source with STARBENCH_ZOO defined; star and sum keep their code in the first)."""
    return build_block("starbench_demo_block", source("demo_block.cpp"), zoo)


def tile_images(tokens: int, hidden: int, batch: int) -> int:
    """Images per tile: as many as keep ``tokens x hidden`` floats within TILE_FLOATS (at least one)."""
    return max(1, min(batch, TILE_FLOATS // (tokens * hidden)))


class _DemoBlockFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lnw, lnb, dww, dwb, wf, bf, wg, bg, gamma, hw, eps: float, act: int, op: int, tile: int):
        h, w = hw
        c, k = dww.shape[0], dww.shape[-1]
        wt = dww.view(c, k * k).t().contiguous()  # (k*k, C): the kernel's loops run over channels
        y, u, f_out, o, mean, rstd = extension(uses_zoo(act, op)).block_forward(x, h, w, lnw, lnb, eps, wt, dwb, wf, bf, wg, bg,
                                                                gamma, act, op, tile)
        ctx.save_for_backward(x, lnw, lnb, wt, wf, bf, wg, gamma, u, f_out, o, mean, rstd)
        ctx.hw, ctx.act, ctx.op, ctx.tile = hw, act, op, tile
        return y

    @staticmethod
    def backward(ctx, grad):
        x, lnw, lnb, wt, wf, bf, wg, gamma, u, f_out, o, mean, rstd = ctx.saved_tensors
        grads = extension(uses_zoo(ctx.act, ctx.op)).block_backward(grad.contiguous(), x, ctx.hw[0], ctx.hw[1], lnw, lnb, wt, wf, bf, wg,
                                           gamma, u, f_out, o, mean, rstd, ctx.act, ctx.op, ctx.tile)
        return (*grads, None, None, None, None, None)


def _is_float_cpu(*tensors: torch.Tensor) -> bool:
    return all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)


def fused_demo_block(x: torch.Tensor, norm: nn.LayerNorm, dwconv: nn.Conv2d, f: nn.Linear, g: nn.Linear,
                     gamma: Optional[torch.Tensor], act: Optional[int], op: Optional[int],
                     tile: Optional[int] = None) -> Optional[torch.Tensor]:
    """``x + gamma * g(op(act(x1), x2))`` with ``x1, x2 = f(dwconv(norm(x))).chunk(2)`` over channels-last
    tokens ``x`` (B, H, W, C) through the kernel (``gamma`` None: no layer scale; ``act``, ``op``: kernel
    codes, None where there is none), or None where it does not apply (then the caller runs the modules)."""
    k = dwconv.kernel_size[0]
    if not (act is not None and op is not None and torch.is_grad_enabled() and x.ndim == 4
            and x.shape[-1] == dwconv.in_channels == dwconv.groups == dwconv.out_channels
            and dwconv.kernel_size == (k, k) and k % 2 == 1 and dwconv.padding == (k // 2, k // 2)
            and dwconv.stride == (1, 1) and dwconv.dilation == (1, 1) and dwconv.padding_mode == "zeros"
            and dwconv.bias is not None and f.bias is not None and g.bias is not None
            and norm.elementwise_affine and norm.weight is not None and norm.bias is not None
            and f.out_features == 2 * g.in_features and norm.normalized_shape == (x.shape[-1],)
            and _is_float_cpu(x, norm.weight, dwconv.weight, f.weight, g.weight)
            and not torch.compiler.is_compiling() and extension(uses_zoo(act, op)) is not None):
        return None
    b, h, w, c = x.shape
    if gamma is None:
        gamma = x.new_ones(c)
    tile = tile or tile_images(h * w, f.out_features, b)
    tokens = x.reshape(b * h * w, c).contiguous()  # a view, except for the first block's permuted stem output
    y = _DemoBlockFn.apply(tokens, norm.weight, norm.bias, dwconv.weight, dwconv.bias, f.weight, f.bias, g.weight,
                           g.bias, gamma, (h, w), norm.eps, act, op, tile)
    return y.view(b, h, w, c)

