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
(``tests/starnet/kernels/test_fused_mlp.py``). The kernel takes codes, not names: which op has which
code is the registry's (``starnet.ops.register_op(name, kernel_code=...)``).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ._build import ACTIVATIONS_CPP, build

_SOURCE = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <vector>

// op: 0 star (a * b), 1 sum (a + b) (OP_STAR, OP_SUM); act_f/act_d: _build.ACTIVATIONS_CPP

// h (T x 2H, rows [h1 | h2]) -> z (T x H) = op(act(h1), h2)
static void merge(const float* h, float* z, int64_t T, int64_t Hd, int64_t act, int64_t op) {
  for (int64_t r = 0; r < T; ++r) {
    const float* h1 = h + r * 2 * Hd; const float* h2 = h1 + Hd; float* zr = z + r * Hd;
    if (op == 0) {
      #pragma omp simd
      for (int64_t j = 0; j < Hd; ++j) zr[j] = act_f(h1[j], act) * h2[j];
    } else {
      #pragma omp simd
      for (int64_t j = 0; j < Hd; ++j) zr[j] = act_f(h1[j], act) + h2[j];
    }
  }
}

// out = op(act(x w1^T + b1), x w2^T + b2) wg^T + bg, computed tile by tile so the 2H-wide
// intermediates never leave the cache. x: (M, C) rows = pixels; w12 = [w1; w2]: (2H, C); wg: (C, H).
torch::Tensor mlp_forward(torch::Tensor x, torch::Tensor w12, torch::Tensor b12, torch::Tensor wg,
                          torch::Tensor bg, int64_t act, int64_t op, int64_t tile) {
  const int64_t M = x.size(0), C = x.size(1), H2 = w12.size(0), Hd = H2 / 2;
  auto out = at::empty({M, wg.size(0)}, x.options());
  auto w12t = w12.t(), wgt = wg.t();
  const int64_t ntiles = (M + tile - 1) / tile;
  at::parallel_for(0, ntiles, 1, [&](int64_t begin, int64_t end) {
    at::NoGradGuard no_grad;  // grad mode is thread-local: OpenMP workers start with it on
    auto h = at::empty({tile, H2}, x.options());
    auto z = at::empty({tile, Hd}, x.options());
    for (int64_t t = begin; t < end; ++t) {
      const int64_t r0 = t * tile, T = std::min(tile, M - r0);
      auto ht = h.narrow(0, 0, T), zt = z.narrow(0, 0, T);
      at::addmm_out(ht, b12, x.narrow(0, r0, T), w12t);
      merge(ht.data_ptr<float>(), zt.data_ptr<float>(), T, Hd, act, op);
      auto ot = out.narrow(0, r0, T);
      at::addmm_out(ot, bg, zt, wgt);
    }
  });
  return out;
}

std::vector<torch::Tensor> mlp_backward(torch::Tensor dout, torch::Tensor x, torch::Tensor w12,
                                        torch::Tensor b12, torch::Tensor wg, int64_t act, int64_t op,
                                        int64_t tile) {
  const int64_t M = x.size(0), C = x.size(1), H2 = w12.size(0), Hd = H2 / 2, Co = wg.size(0);
  auto dx = at::empty({M, C}, x.options());
  const int64_t nthreads = at::get_num_threads();
  auto dw12t_p = at::zeros({nthreads, C, H2}, x.options());  // dW12^T: x^T dh is the faster GEMM
  auto db12_p = at::zeros({nthreads, H2}, x.options());
  auto dwg_p = at::zeros({nthreads, Co, Hd}, x.options());
  auto w12t = w12.t();
  const int64_t ntiles = (M + tile - 1) / tile;
  at::parallel_for(0, ntiles, 1, [&](int64_t begin, int64_t end) {
    at::NoGradGuard no_grad;  // grad mode is thread-local: OpenMP workers start with it on
    const int64_t tid = at::get_thread_num();
    auto dw12t = dw12t_p[tid], dwg = dwg_p[tid];
    float* db12 = db12_p[tid].data_ptr<float>();
    auto h = at::empty({tile, H2}, x.options());
    auto z = at::empty({tile, Hd}, x.options());
    auto dz = at::empty({tile, Hd}, x.options());
    auto dh = at::empty({tile, H2}, x.options());
    for (int64_t t = begin; t < end; ++t) {
      const int64_t r0 = t * tile, T = std::min(tile, M - r0);
      auto xt = x.narrow(0, r0, T), dot = dout.narrow(0, r0, T);
      auto ht = h.narrow(0, 0, T), zt = z.narrow(0, 0, T), dzt = dz.narrow(0, 0, T), dht = dh.narrow(0, 0, T);
      at::addmm_out(ht, b12, xt, w12t);                       // recompute the forward's intermediates
      merge(ht.data_ptr<float>(), zt.data_ptr<float>(), T, Hd, act, op);
      dwg.addmm_(dot.t(), zt);                                  // dWg += dout^T z
      at::mm_out(dzt, dot, wg);                                 // dz = dout wg
      const float* hp = ht.data_ptr<float>(); const float* dzp = dzt.data_ptr<float>();
      float* dhp = dht.data_ptr<float>();
      for (int64_t r = 0; r < T; ++r) {
        const float* h1 = hp + r * H2; const float* h2 = h1 + Hd; const float* g = dzp + r * Hd;
        float* d1 = dhp + r * H2; float* d2 = d1 + Hd;
        if (op == 0) {
          #pragma omp simd
          for (int64_t j = 0; j < Hd; ++j) { d1[j] = g[j] * h2[j] * act_d(h1[j], act); d2[j] = g[j] * act_f(h1[j], act); }
        } else {
          #pragma omp simd
          for (int64_t j = 0; j < Hd; ++j) { d1[j] = g[j] * act_d(h1[j], act); d2[j] = g[j]; }
        }
        #pragma omp simd
        for (int64_t j = 0; j < H2; ++j) db12[j] += d1[j];
      }
      dw12t.addmm_(xt.t(), dht);                                // dW12^T += x^T dh
      auto dxt = dx.narrow(0, r0, T);
      at::mm_out(dxt, dht, w12);                                // dx = dh w12
    }
  });
  return {dx, dw12t_p.sum(0).t().contiguous(), db12_p.sum(0), dwg_p.sum(0), dout.sum(0)};
}
"""

# The merges the kernel implements, by the code it takes (``merge`` above).
OP_STAR, OP_SUM = 0, 1
MAX_CHANNELS = 64  # measured per block fwd+bwd: fused ~1.8x / ~1.4x faster at 24 / 48 channels, slower at 96 and 192
TILE_FLOATS = 1 << 19  # rows per tile: the (rows x 2*hidden) intermediate fills ~2 MB (this CPU: 1 MB L2/core)

def extension():
    return build("starbench_fused_mlp", ACTIVATIONS_CPP + _SOURCE, ["mlp_forward", "mlp_backward"])


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
