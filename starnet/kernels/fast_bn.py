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
(``tests/starnet/kernels/test_fast_bn.py``).
"""
from __future__ import annotations

from typing import Optional

import torch

from ._build import ACT_IDENTITY, ACTIVATIONS_CPP, build
from .accelerate import PLAIN

_SOURCE = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <vector>

static constexpr int64_t CHUNKS = 64;  // fixed partial-sum chunks: reproducible for any thread count
static constexpr int64_t BLOCK = 64;   // rows summed in float before they go into the double partials

// Per-chunk sums over rows of f(r, c) and g(r, c), then added in chunk order.
template <typename F>
static void channel_sums(int64_t M, int64_t C, double* out_a, double* out_b, const F& fill) {
  const int64_t chunk = (M + CHUNKS - 1) / CHUNKS;
  std::vector<double> pa(CHUNKS * C, 0.0), pb(CHUNKS * C, 0.0);
  at::parallel_for(0, CHUNKS, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> a(C), b(C);
    for (int64_t k = begin; k < end; ++k) {
      double* da = pa.data() + k * C; double* db = pb.data() + k * C;
      const int64_t r_end = std::min(M, (k + 1) * chunk);
      for (int64_t r0 = k * chunk; r0 < r_end; r0 += BLOCK) {
        std::fill(a.begin(), a.end(), 0.f); std::fill(b.begin(), b.end(), 0.f);
        for (int64_t r = r0; r < std::min(r_end, r0 + BLOCK); ++r) fill(r, a.data(), b.data());
        for (int64_t c = 0; c < C; ++c) { da[c] += a[c]; db[c] += b[c]; }
      }
    }
  });
  for (int64_t c = 0; c < C; ++c) { out_a[c] = 0.0; out_b[c] = 0.0; }
  for (int64_t k = 0; k < CHUNKS; ++k)
    for (int64_t c = 0; c < C; ++c) { out_a[c] += pa[k * C + c]; out_b[c] += pb[k * C + c]; }
}

// x: (M, C) contiguous. Returns y = act((x - mean) * invstd * w + b), mean, biased var.
std::vector<torch::Tensor> bn_forward(torch::Tensor x, torch::Tensor weight, torch::Tensor bias,
                                      double eps, int64_t act) {
  const int64_t M = x.size(0), C = x.size(1);
  const float* xp = x.data_ptr<float>();
  std::vector<double> s(C), q(C);
  channel_sums(M, C, s.data(), q.data(), [&](int64_t r, float* a, float* b) {
    const float* xr = xp + r * C;
    #pragma omp simd
    for (int64_t c = 0; c < C; ++c) { a[c] += xr[c]; b[c] += xr[c] * xr[c]; }
  });
  auto mean = at::empty({C}, x.options()), var = at::empty({C}, x.options());
  std::vector<float> scale(C);
  const float* w = weight.data_ptr<float>(); const float* bb = bias.data_ptr<float>();
  for (int64_t c = 0; c < C; ++c) {
    const double m = s[c] / M, v = std::max(q[c] / M - m * m, 0.0);
    mean.data_ptr<float>()[c] = (float)m; var.data_ptr<float>()[c] = (float)v;
    const double inv = 1.0 / std::sqrt(v + eps);
    scale[c] = (float)(w[c] * inv);
  }
  auto y = at::empty({M, C}, x.options());
  float* yp = y.data_ptr<float>();
  const float* sc = scale.data(); const float* mp = mean.data_ptr<float>();
  at::parallel_for(0, M, 256, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = xp + r * C; float* yr = yp + r * C;
      #pragma omp simd
      for (int64_t c = 0; c < C; ++c) yr[c] = act_f((xr[c] - mp[c]) * sc[c] + bb[c], act);  // centred first: no cancellation
    }
  });
  return {y, mean, var};
}

// gy: gradient of the output; y: the output (only read when act != 0). Returns dx, dweight, dbias.
std::vector<torch::Tensor> bn_backward(torch::Tensor gy, torch::Tensor x, torch::Tensor y,
                                       torch::Tensor mean, torch::Tensor var, torch::Tensor weight,
                                       double eps, int64_t act) {
  const int64_t M = x.size(0), C = x.size(1);
  const float* gp = gy.data_ptr<float>(); const float* xp = x.data_ptr<float>();
  const float* yp = act ? y.data_ptr<float>() : nullptr;
  const float* mp = mean.data_ptr<float>();
  std::vector<double> sdy(C), sdyx(C);  // sum(dy), sum(dy * (x - mean)); dy = gy * act'(y)
  channel_sums(M, C, sdy.data(), sdyx.data(), [&](int64_t r, float* a, float* b) {
    const float* g = gp + r * C; const float* xr = xp + r * C;
    if (act) {
      const float* yr = yp + r * C;
      #pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const float d = g[c] * act_d(yr[c], act);
        a[c] += d; b[c] += d * (xr[c] - mp[c]);
      }
    } else {
      #pragma omp simd
      for (int64_t c = 0; c < C; ++c) { a[c] += g[c]; b[c] += g[c] * (xr[c] - mp[c]); }
    }
  });
  // dx = w*inv*(dy - mean(dy) - xhat*mean(dy*xhat)) = k_dy*dy + k_x*(x - mean) + k_0 per channel
  auto dweight = at::empty({C}, x.options()), dbias = at::empty({C}, x.options());
  std::vector<float> kdy(C), kx(C), k0(C);
  const float* w = weight.data_ptr<float>(); const float* vp = var.data_ptr<float>();
  for (int64_t c = 0; c < C; ++c) {
    const double inv = 1.0 / std::sqrt((double)vp[c] + eps);
    dbias.data_ptr<float>()[c] = (float)sdy[c];
    dweight.data_ptr<float>()[c] = (float)(sdyx[c] * inv);
    const double a = w[c] * inv, b = -w[c] * inv * inv * inv * sdyx[c] / M;
    kdy[c] = (float)a; kx[c] = (float)b; k0[c] = (float)(-a * sdy[c] / M);
  }
  auto dx = at::empty({M, C}, x.options());
  float* dp = dx.data_ptr<float>();
  const float* ka = kdy.data(); const float* kb = kx.data(); const float* kc = k0.data();
  at::parallel_for(0, M, 256, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* g = gp + r * C; const float* xr = xp + r * C; float* d = dp + r * C;
      if (act) {
        const float* yr = yp + r * C;
        #pragma omp simd
        for (int64_t c = 0; c < C; ++c) d[c] = ka[c] * g[c] * act_d(yr[c], act) + kb[c] * (xr[c] - mp[c]) + kc[c];
      } else {
        #pragma omp simd
        for (int64_t c = 0; c < C; ++c) d[c] = ka[c] * g[c] + kb[c] * (xr[c] - mp[c]) + kc[c];
      }
    }
  });
  return {dx, dweight, dbias};
}
"""

def extension():
    return build("starbench_fast_bn", ACTIVATIONS_CPP + _SOURCE, ["bn_forward", "bn_backward"])


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
                    act: Optional[int] = ACT_IDENTITY) -> Optional[torch.Tensor]:
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
