// StarNet's block MLP in one pass over tiles (starnet/kernels/fused_mlp.py builds it and says when it is used).
#include "activations.h"

#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <vector>

// op: 0 star (a * b), 1 sum (a + b); act: act_f/act_d's (activations.h). The codes: starnet/kernels/codes.py

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
