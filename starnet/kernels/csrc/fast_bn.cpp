// Training-mode BatchNorm (+ ReLU/ReLU6) (starnet/kernels/fast_bn.py builds it and says when it is used).
#include "activations.h"

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
