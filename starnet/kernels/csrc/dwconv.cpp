// The weight gradient of a depthwise conv (starnet/kernels/dwconv.py builds it and says when it is used).

#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <vector>

// x, grad: (B, C, H, W) in channels_last memory; k: odd kernel size, stride 1, padding k / 2.
torch::Tensor dw_weight_grad(torch::Tensor x, torch::Tensor grad, int64_t k) {
  auto xn = x.permute({0, 2, 3, 1}).contiguous();   // views, no copy, for channels_last inputs
  auto gn = grad.permute({0, 2, 3, 1}).contiguous();
  const int64_t B = xn.size(0), H = xn.size(1), W = xn.size(2), C = xn.size(3), p = k / 2, KK = k * k;
  const float* X = xn.data_ptr<float>();
  const float* G = gn.data_ptr<float>();
  const int64_t T = at::get_num_threads();
  std::vector<float> partial(T * KK * C, 0.f);
  at::parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
    float* acc = partial.data() + at::get_thread_num() * KK * C;
    for (int64_t by = begin; by < end; ++by) {
      const int64_t b = by / H, y = by % H;
      const float* grow = G + (b * H + y) * W * C;
      for (int64_t ky = 0; ky < k; ++ky) {
        const int64_t iy = y + ky - p;
        if (iy < 0 || iy >= H) continue;
        const float* xrow = X + (b * H + iy) * W * C;
        for (int64_t kx = 0; kx < k; ++kx) {
          const int64_t shift = kx - p;
          const int64_t lo = std::max<int64_t>(0, -shift), hi = std::min<int64_t>(W, W - shift);
          float* a = acc + (ky * k + kx) * C;
          int64_t c0 = 0;
          for (; c0 + 8 <= C; c0 += 8) {
            float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            for (int64_t x0 = lo; x0 < hi; ++x0) {
              const float* xp = xrow + (x0 + shift) * C + c0;
              const float* gp = grow + x0 * C + c0;
              #pragma omp simd
              for (int j = 0; j < 8; ++j) s[j] += xp[j] * gp[j];
            }
            for (int j = 0; j < 8; ++j) a[c0 + j] += s[j];
          }
          for (; c0 < C; ++c0) {
            float s = 0;
            for (int64_t x0 = lo; x0 < hi; ++x0) s += xrow[(x0 + shift) * C + c0] * grow[x0 * C + c0];
            a[c0] += s;
          }
        }
      }
    }
  });
  auto out = torch::zeros({KK, C}, x.options());
  float* O = out.data_ptr<float>();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < KK * C; ++i) O[i] += partial[t * KK * C + i];
  return out.t().reshape({C, 1, k, k}).contiguous();
}
