// DemoNet's whole block (starnet/kernels/demo_block.py builds it, twice: with STARBENCH_ZOO defined, the zoo's
// build; it says when each is used).
#include "activations.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__AVX512F__)
#pragma GCC target("prefer-vector-width=512")  // GCC's default for -march=native is 256-bit vectors: 512 here
#endif
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

// act: act_f/act_d's (activations.h) or 3 = GELU (the zoo build: 4 = SiLU); op: 0 star, 1 sum (the zoo build:
// 2 max, 3 gate). The codes: starnet/kernels/codes.py.
static const int64_t GELU = 3;
// Rows ahead that the backward's passes over saved tensors prefetch (with act_merge_backward's one pass, a step
// 1.1-1.2x faster at widths 16-64, measured; the fused pass alone ~1.08x; 2 to 16 rows alike).
static const int64_t PREFETCH_ROWS = 4;

// GELU(v) = v * Phi(v) and its derivative Phi(v) + v * phi(v), in loops the compiler vectorises (std::erf and
// std::exp do not vectorise, and ATen's vectorised GELU is 10x slower on a strided half of h). erf by
// Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7), the formula of ATen's own vectorised erf; exp by Cephes'
// expf polynomial. erf(|v| / sqrt 2) needs exp(-v^2 / 2), which is phi's exponential too: one exp for both.
#ifdef STARBENCH_ZOO
#define ZOO_INLINE __attribute__((always_inline))  // the zoo's many call sites exceed GCC's inlining budget: an
#else                                              // exp_neg called, not inlined, keeps its loop scalar (4x slower)
#define ZOO_INLINE
#endif
static inline ZOO_INLINE float exp_neg(float v) {  // exp(v) for v <= 0, 0 below the float range
  v = std::max(v, -87.f);
  const float n = std::nearbyint(v * 1.44269504088896341f);
  const float r = (v - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f; p = p * r + 8.3334519073e-3f; p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f; p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  const int32_t bits = ((int32_t)n + 127) << 23;
  float scale; std::memcpy(&scale, &bits, sizeof scale);
  return v <= -87.f ? 0.f : p * scale;
}
static inline ZOO_INLINE void gelu_parts(float v, float& cdf, float& pdf_v) {  // Phi(v) and v * phi(v)
  const float e = exp_neg(-0.5f * v * v), z = std::fabs(v) * 0.70710678118654752f;
  const float t = 1.f / (1.f + 0.3275911f * z);
  const float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
  const float erf_abs = 1.f - poly * e;
  cdf = 0.5f * (1.f + (v < 0.f ? -erf_abs : erf_abs));
  pdf_v = v * e * 0.39894228040143268f;
}

#ifdef STARBENCH_ZOO
// The zoo's second build (extension(zoo=True)): ops 2 max and 3 gate, activation 4 SiLU, in loops of their own.
// In the default build the preprocessor removes them, so star's and sum's code there is what it was (the same
// machine code: the runs in docs/results were trained by it); one build with both changed sum's last bits.
static const int64_t SILU = 4;
static inline ZOO_INLINE float sigmoid_f(float w) {  // 1 / (1 + exp(-w)), from exp(-|w|) <= 1 on both sides: no overflow
  const float e = exp_neg(-std::fabs(w)), s = 1.f / (1.f + e);
  return w >= 0.f ? s : e * s;
}
// a = act(v) and d = act'(v); ACTK: GELU, SILU or 0 for act_f/act_d's codes
template <int ACTK>
static inline ZOO_INLINE void zoo_act(float v, int64_t act, float& a, float& d) {
  if (ACTK == GELU) { float cdf, pv; gelu_parts(v, cdf, pv); a = v * cdf; d = cdf + pv; }
  else if (ACTK == SILU) { const float s = sigmoid_f(v); a = v * s; d = s + a * (1.f - s); }
  else { a = act_f(v, act); d = act_d(v, act); }
}
// z = op(a, w): star, sum, max (torch.maximum: a tie splits the gradient in halves), gate a * sigmoid(w)
template <int OP>
static inline ZOO_INLINE float zoo_merge(float a, float w) {
  return OP == 0 ? a * w : OP == 1 ? a + w : OP == 2 ? (a > w ? a : w) : a * sigmoid_f(w);
}
template <int OP, int ACTK>
static void zoo_bias_act_merge_t(float* h, const float* bf, float* z, int64_t T, int64_t Hd, int64_t act) {
  const float* b1 = bf; const float* b2 = bf + Hd;
  for (int64_t r = 0; r < T; ++r) {
    float* h1 = h + r * 2 * Hd; float* h2 = h1 + Hd; float* zr = z + r * Hd;
    #pragma omp simd
    for (int64_t j = 0; j < Hd; ++j) {
      const float v = h1[j] + b1[j], w = h2[j] + b2[j];
      h1[j] = v; h2[j] = w;
      float a, d;
      zoo_act<ACTK>(v, act, a, d);
      zr[j] = zoo_merge<OP>(a, w);
    }
  }
}
template <int OP, int ACTK>
static void zoo_act_merge_backward_t(const float* h, const float* dz, float* z, float* dh, float* dbf, int64_t T,
                                     int64_t Hd, int64_t act) {
  for (int64_t r = 0; r < T; ++r) {
    const float* h1 = h + r * 2 * Hd; const float* h2 = h1 + Hd; const float* g = dz + r * Hd;
    float* zr = z + r * Hd; float* d1 = dh + r * 2 * Hd; float* d2 = d1 + Hd;
    if (r + PREFETCH_ROWS < T)
      for (int64_t q = 0; q < 2 * Hd; q += 16) __builtin_prefetch(h1 + PREFETCH_ROWS * 2 * Hd + q, 0, 3);
    #pragma omp simd
    for (int64_t j = 0; j < Hd; ++j) {
      const float v = h1[j], w = h2[j], gj = g[j];  // every load unconditional: a select on one does not vectorise
      float a, d, ga, gw;  // ga, gw: dz's share for a and for w
      zoo_act<ACTK>(v, act, a, d);
      if (OP == 0) { zr[j] = a * w; ga = gj * w; gw = gj * a; }
      else if (OP == 1) { zr[j] = a + w; ga = gj; gw = gj; }
      else if (OP == 2) { zr[j] = a > w ? a : w; ga = gj * (a > w ? 1.f : a == w ? 0.5f : 0.f); gw = gj - ga; }
      else { const float sg = sigmoid_f(w); zr[j] = a * sg; ga = gj * sg; gw = gj * (a * sg) * (1.f - sg); }
      d1[j] = d * ga; d2[j] = gw;
      dbf[j] += d1[j]; dbf[Hd + j] += d2[j];
    }
  }
}
// F<OP, ACTK>(...) for the runtime codes: every op with GELU, SiLU or act_f's activations
#define ZOO_DISPATCH(F, ...)                                                                              \
  do {                                                                                                    \
    if (act == GELU) { ZOO_OPS(F, GELU, __VA_ARGS__); }                                                   \
    else if (act == SILU) { ZOO_OPS(F, SILU, __VA_ARGS__); }                                              \
    else { ZOO_OPS(F, 0, __VA_ARGS__); }                                                                  \
  } while (0)
#define ZOO_OPS(F, A, ...)                                                                                \
  if (op == 0) F<0, A>(__VA_ARGS__); else if (op == 1) F<1, A>(__VA_ARGS__);                             \
  else if (op == 2) F<2, A>(__VA_ARGS__); else F<3, A>(__VA_ARGS__)
#endif

// The backward's one pass over a tile's h (read back from memory: it is the block's largest saved tensor, so
// the next rows are prefetched), with g = dz: the recomputed z = op(act(h1), h2) for dWg, and the op's and
// the activation's gradients dh1 = g (* h2 for star) * act'(h1), dh2 = g (* act(h1) for star), summed into
// dbf as they are made.
template <int OP, bool IS_GELU>
static void act_merge_backward_t(const float* h, const float* dz, float* z, float* dh, float* dbf, int64_t T,
                                 int64_t Hd, int64_t act) {
  for (int64_t r = 0; r < T; ++r) {
    const float* h1 = h + r * 2 * Hd; const float* h2 = h1 + Hd; const float* g = dz + r * Hd;
    float* zr = z + r * Hd; float* d1 = dh + r * 2 * Hd; float* d2 = d1 + Hd;
    if (r + PREFETCH_ROWS < T)
      for (int64_t q = 0; q < 2 * Hd; q += 16) __builtin_prefetch(h1 + PREFETCH_ROWS * 2 * Hd + q, 0, 3);
    #pragma omp simd
    for (int64_t j = 0; j < Hd; ++j) {
      const float v = h1[j];
      float a, d;
      if (IS_GELU) { float cdf, pv; gelu_parts(v, cdf, pv); a = v * cdf; d = cdf + pv; }
      else { a = act_f(v, act); d = act_d(v, act); }
      if (OP == 0) { zr[j] = a * h2[j]; d1[j] = d * (g[j] * h2[j]); d2[j] = g[j] * a; }
      else { zr[j] = a; d1[j] = d * g[j]; d2[j] = g[j]; }
      dbf[j] += d1[j]; dbf[Hd + j] += d2[j];
    }
    if (OP == 1) {  // sum's z = a + h2 in a loop of its own: in the one above the compiler would fuse a = v * cdf
      #pragma omp simd  // into the add (an FMA) and change z's last bits from the runs committed in docs/results
      for (int64_t j = 0; j < Hd; ++j) zr[j] += h2[j];
    }
  }
}

static void act_merge_backward(const float* h, const float* dz, float* z, float* dh, float* dbf, int64_t T,
                               int64_t Hd, int64_t act, int64_t op) {
#ifdef STARBENCH_ZOO
  ZOO_DISPATCH(zoo_act_merge_backward_t, h, dz, z, dh, dbf, T, Hd, act);
#else
  if (op == 0) {
    if (act == GELU) act_merge_backward_t<0, true>(h, dz, z, dh, dbf, T, Hd, act);
    else act_merge_backward_t<0, false>(h, dz, z, dh, dbf, T, Hd, act);
  } else {
    if (act == GELU) act_merge_backward_t<1, true>(h, dz, z, dh, dbf, T, Hd, act);
    else act_merge_backward_t<1, false>(h, dz, z, dh, dbf, T, Hd, act);
  }
#endif
}

// The forward's: h += bf in place (the backward reads the biased h), z = op(act(h1), h2), one pass over h.
template <int OP, bool IS_GELU>
static void bias_act_merge_t(float* h, const float* bf, float* z, int64_t T, int64_t Hd, int64_t act) {
  const float* b1 = bf; const float* b2 = bf + Hd;
  for (int64_t r = 0; r < T; ++r) {
    float* h1 = h + r * 2 * Hd; float* h2 = h1 + Hd; float* zr = z + r * Hd;
    #pragma omp simd
    for (int64_t j = 0; j < Hd; ++j) {
      const float v = h1[j] + b1[j], w = h2[j] + b2[j];
      h1[j] = v; h2[j] = w;
      float a;
      if (IS_GELU) { float cdf, pv; gelu_parts(v, cdf, pv); a = v * cdf; } else { a = act_f(v, act); }
      zr[j] = OP == 0 ? a * w : a + w;
    }
  }
}

static void bias_act_merge(float* h, const float* bf, float* z, int64_t T, int64_t Hd, int64_t act, int64_t op) {
#ifdef STARBENCH_ZOO
  ZOO_DISPATCH(zoo_bias_act_merge_t, h, bf, z, T, Hd, act);
#else
  if (op == 0) {
    if (act == GELU) bias_act_merge_t<0, true>(h, bf, z, T, Hd, act); else bias_act_merge_t<0, false>(h, bf, z, T, Hd, act);
  } else {
    if (act == GELU) bias_act_merge_t<1, true>(h, bf, z, T, Hd, act); else bias_act_merge_t<1, false>(h, bf, z, T, Hd, act);
  }
#endif
}

// LayerNorm over the rows of x (T x C): nhat = (x - mean) * rstd, n = nhat * w + b.
static void layer_norm(const float* x, const float* w, const float* b, float eps, float* n, float* mean,
                       float* rstd, int64_t T, int64_t C) {
  for (int64_t r = 0; r < T; ++r) {
    const float* xr = x + r * C; float* nr = n + r * C;
    float s = 0.f;
    #pragma omp simd reduction(+:s)
    for (int64_t c = 0; c < C; ++c) s += xr[c];
    const float m = s / C;
    float v = 0.f;
    #pragma omp simd reduction(+:v)
    for (int64_t c = 0; c < C; ++c) v += (xr[c] - m) * (xr[c] - m);  // centred first: no cancellation
    const float rs = 1.f / std::sqrt(v / C + eps);
    mean[r] = m; rstd[r] = rs;
    #pragma omp simd
    for (int64_t c = 0; c < C; ++c) nr[c] = (xr[c] - m) * rs * w[c] + b[c];
  }
}

// Depthwise k x k conv, stride 1, padding k / 2, over `imgs` images of H x W tokens x C channels; wt: (k*k, C),
// the weight transposed so that the loops run over contiguous channels. Each loop runs over chunks of L
// channels with its sums in registers (L fixed: the compiler unrolls it into vector FMAs).
// The valid taps of output row y: ky in [max(0, p - y), min(k, H + p - y)).
// Each loop runs NI images of a tile at once (the same taps, their sums independent: NI chains of vector FMAs
// where one image alone waits on one), every sum in the order one image alone would take.
template <int L, int NI>
static void dw_chunk_forward(const float* n, const float* wt, const float* bias, float* u, int64_t H, int64_t W,
                             int64_t C, int64_t k, int64_t c0) {
  const int64_t p = k / 2, img = H * W * C;
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x) {
      float acc[NI][L];
      for (int i = 0; i < NI; ++i)
        for (int j = 0; j < L; ++j) acc[i][j] = bias[c0 + j];
      for (int64_t ky = std::max<int64_t>(0, p - y); ky < std::min<int64_t>(k, H + p - y); ++ky)
        for (int64_t kx = std::max<int64_t>(0, p - x); kx < std::min<int64_t>(k, W + p - x); ++kx) {
          const float* nr = n + ((y + ky - p) * W + (x + kx - p)) * C + c0; const float* wr = wt + (ky * k + kx) * C + c0;
          for (int i = 0; i < NI; ++i) {
            #pragma omp simd
            for (int j = 0; j < L; ++j) acc[i][j] += wr[j] * nr[i * img + j];
          }
        }
      float* ur = u + (y * W + x) * C + c0;
      for (int i = 0; i < NI; ++i)
        for (int j = 0; j < L; ++j) ur[i * img + j] = acc[i][j];
    }
}

// The backward of one chunk: dn = the transposed conv of du (a gather over the outputs each input feeds),
// dwt += per tap the sum of n * du over the positions, dbias += du (each image's sum added in image order).
template <int L, int NI>
static void dw_chunk_backward(const float* n, const float* wt, const float* du, float* dn, float* dwt, float* dbias,
                              int64_t H, int64_t W, int64_t C, int64_t k, int64_t c0) {
  const int64_t p = k / 2, img = H * W * C;
  for (int64_t iy = 0; iy < H; ++iy)
    for (int64_t ix = 0; ix < W; ++ix) {  // output y = iy + p - ky must lie in [0, H)
      float acc[NI][L] = {};
      for (int64_t ky = std::max<int64_t>(0, iy + p - H + 1); ky < std::min<int64_t>(k, iy + p + 1); ++ky)
        for (int64_t kx = std::max<int64_t>(0, ix + p - W + 1); kx < std::min<int64_t>(k, ix + p + 1); ++kx) {
          const float* gr = du + ((iy + p - ky) * W + (ix + p - kx)) * C + c0; const float* wr = wt + (ky * k + kx) * C + c0;
          for (int i = 0; i < NI; ++i) {
            #pragma omp simd
            for (int j = 0; j < L; ++j) acc[i][j] += wr[j] * gr[i * img + j];
          }
        }
      float* dr = dn + (iy * W + ix) * C + c0;
      for (int i = 0; i < NI; ++i)
        for (int j = 0; j < L; ++j) dr[i * img + j] = acc[i][j];
    }
  for (int64_t ky = 0; ky < k; ++ky)
    for (int64_t kx = 0; kx < k; ++kx) {
      float acc[NI][L] = {};
      for (int64_t y = std::max<int64_t>(0, p - ky); y < std::min<int64_t>(H, H + p - ky); ++y)
        for (int64_t x = std::max<int64_t>(0, p - kx); x < std::min<int64_t>(W, W + p - kx); ++x) {
          const float* nr = n + ((y + ky - p) * W + (x + kx - p)) * C + c0; const float* gr = du + (y * W + x) * C + c0;
          for (int i = 0; i < NI; ++i) {
            #pragma omp simd
            for (int j = 0; j < L; ++j) acc[i][j] += nr[i * img + j] * gr[i * img + j];
          }
        }
      float* dwr = dwt + (ky * k + kx) * C + c0;
      for (int i = 0; i < NI; ++i)
        for (int j = 0; j < L; ++j) dwr[j] += acc[i][j];
    }
  float acc[NI][L] = {};
  for (int64_t r = 0; r < H * W; ++r)
    for (int i = 0; i < NI; ++i) {
      #pragma omp simd
      for (int j = 0; j < L; ++j) acc[i][j] += du[i * img + r * C + c0 + j];
    }
  for (int i = 0; i < NI; ++i)
    for (int j = 0; j < L; ++j) dbias[c0 + j] += acc[i][j];
}

// Channels in chunks of 32, 16, 8, then one at a time.
template <typename F32, typename F16, typename F8, typename F1>
static void over_chunks(int64_t C, F32 f32, F16 f16, F8 f8, F1 f1) {
  int64_t c0 = 0;
  for (; c0 + 32 <= C; c0 += 32) f32(c0);
  for (; c0 + 16 <= C; c0 += 16) f16(c0);
  for (; c0 + 8 <= C; c0 += 8) f8(c0);
  for (; c0 < C; ++c0) f1(c0);
}

// Images in groups of DW_IMAGES, the tile's last one at a time, each group over the channel chunks (4: at widths
// 8-64 on 7x7 tokens 1.1-1.2x a step over one image at a time; 2 and 8 no better, 8 slower at w16; a third loop
// for the last in twos made the whole step 1.5-1.8x slower at w16, measured: it is not kept).
static const int64_t DW_IMAGES = 4;

template <int NI>
static void dwconv_images(const float* n, const float* wt, const float* bias, float* u, int64_t H, int64_t W,
                          int64_t C, int64_t k) {
  over_chunks(C, [&](int64_t c0) { dw_chunk_forward<32, NI>(n, wt, bias, u, H, W, C, k, c0); },
              [&](int64_t c0) { dw_chunk_forward<16, NI>(n, wt, bias, u, H, W, C, k, c0); },
              [&](int64_t c0) { dw_chunk_forward<8, NI>(n, wt, bias, u, H, W, C, k, c0); },
              [&](int64_t c0) { dw_chunk_forward<1, NI>(n, wt, bias, u, H, W, C, k, c0); });
}

template <int NI>
static void dwconv_backward_images(const float* n, const float* wt, const float* du, float* dn, float* dwt,
                                   float* dbias, int64_t H, int64_t W, int64_t C, int64_t k) {
  over_chunks(C, [&](int64_t c0) { dw_chunk_backward<32, NI>(n, wt, du, dn, dwt, dbias, H, W, C, k, c0); },
              [&](int64_t c0) { dw_chunk_backward<16, NI>(n, wt, du, dn, dwt, dbias, H, W, C, k, c0); },
              [&](int64_t c0) { dw_chunk_backward<8, NI>(n, wt, du, dn, dwt, dbias, H, W, C, k, c0); },
              [&](int64_t c0) { dw_chunk_backward<1, NI>(n, wt, du, dn, dwt, dbias, H, W, C, k, c0); });
}

static void dwconv(const float* n, const float* wt, const float* bias, float* u, int64_t imgs, int64_t H,
                   int64_t W, int64_t C, int64_t k) {
  const int64_t img = H * W * C;
  int64_t i = 0;
  for (; i + DW_IMAGES <= imgs; i += DW_IMAGES) dwconv_images<DW_IMAGES>(n + i * img, wt, bias, u + i * img, H, W, C, k);
  for (; i < imgs; ++i) dwconv_images<1>(n + i * img, wt, bias, u + i * img, H, W, C, k);
}

static void dwconv_backward(const float* n, const float* wt, const float* du, float* dn, float* dwt, float* dbias,
                            int64_t imgs, int64_t H, int64_t W, int64_t C, int64_t k) {
  const int64_t img = H * W * C;
  int64_t i = 0;
  for (; i + DW_IMAGES <= imgs; i += DW_IMAGES)
    dwconv_backward_images<DW_IMAGES>(n + i * img, wt, du + i * img, dn + i * img, dwt, dbias, H, W, C, k);
  for (; i < imgs; ++i) dwconv_backward_images<1>(n + i * img, wt, du + i * img, dn + i * img, dwt, dbias, H, W, C, k);
}

// x: (B*H*W, C) tokens; wt (k*k, C); wf (6C', C), wg (C, 3C'). Returns y, and for the backward u (conv
// output), h (f's output: storing it costs less than recomputing its GEMM), o (g's output, before the layer
// scale), mean, rstd.
std::vector<torch::Tensor> block_forward(torch::Tensor x, int64_t H, int64_t W, torch::Tensor lnw,
    torch::Tensor lnb, double eps, torch::Tensor wt, torch::Tensor dwb, torch::Tensor wf, torch::Tensor bf,
    torch::Tensor wg, torch::Tensor bg, torch::Tensor gamma, int64_t act, int64_t op, int64_t tile) {
  const int64_t M = x.size(0), C = x.size(1), HW = H * W, B = M / HW, H2 = wf.size(0), Hd = H2 / 2;
  const int64_t k = (int64_t)std::lround(std::sqrt((double)wt.size(0)));
  auto y = at::empty_like(x), u = at::empty_like(x), o = at::empty_like(x), h = at::empty({M, H2}, x.options());
  auto mean = at::empty({M}, x.options()), rstd = at::empty({M}, x.options());
  auto wft = wf.t(), wgt = wg.t();
  const int64_t ntiles = (B + tile - 1) / tile;
  at::parallel_for(0, ntiles, 1, [&](int64_t begin, int64_t end) {
    at::NoGradGuard no_grad;  // grad mode is thread-local: OpenMP workers start with it on
    auto n = at::empty({tile * HW, C}, x.options());
    auto z = at::empty({tile * HW, Hd}, x.options());
    for (int64_t t = begin; t < end; ++t) {
      const int64_t i0 = t * tile, imgs = std::min(tile, B - i0), r0 = i0 * HW, T = imgs * HW;
      layer_norm(x.data_ptr<float>() + r0 * C, lnw.data_ptr<float>(), lnb.data_ptr<float>(), (float)eps,
                 n.data_ptr<float>(), mean.data_ptr<float>() + r0, rstd.data_ptr<float>() + r0, T, C);
      dwconv(n.data_ptr<float>(), wt.data_ptr<float>(), dwb.data_ptr<float>(), u.data_ptr<float>() + r0 * C,
             imgs, H, W, C, k);
      auto ht = h.narrow(0, r0, T), zt = z.narrow(0, 0, T), ot = o.narrow(0, r0, T);
      at::mm_out(ht, u.narrow(0, r0, T), wft);  // the biases join in the loops that read the GEMMs' outputs
      bias_act_merge(ht.data_ptr<float>(), bf.data_ptr<float>(), zt.data_ptr<float>(), T, Hd, act, op);
      at::mm_out(ot, zt, wgt);
      const float* xp = x.data_ptr<float>() + r0 * C; float* op_ = ot.data_ptr<float>();
      const float* gp = gamma.data_ptr<float>(); const float* bgp = bg.data_ptr<float>();
      float* yp = y.data_ptr<float>() + r0 * C;
      for (int64_t r = 0; r < T; ++r) {
        #pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          const float ov = op_[r * C + c] + bgp[c];
          op_[r * C + c] = ov;
          yp[r * C + c] = xp[r * C + c] + gp[c] * ov;
        }
      }
    }
  });
  return {y, u, h, o, mean, rstd};
}

// Gradients of x, lnw, lnb, the conv weight (C, 1, k, k) and bias, wf, bf, wg, bg, gamma.
std::vector<torch::Tensor> block_backward(torch::Tensor dy, torch::Tensor x, int64_t H, int64_t W,
    torch::Tensor lnw, torch::Tensor lnb, torch::Tensor wt, torch::Tensor wf, torch::Tensor bf, torch::Tensor wg,
    torch::Tensor gamma, torch::Tensor u, torch::Tensor h, torch::Tensor o, torch::Tensor mean, torch::Tensor rstd, int64_t act,
    int64_t op, int64_t tile) {
  const int64_t M = x.size(0), C = x.size(1), HW = H * W, B = M / HW, H2 = wf.size(0), Hd = H2 / 2;
  const int64_t KK = wt.size(0), k = (int64_t)std::lround(std::sqrt((double)KK));
  const int64_t nthreads = at::get_num_threads();
  auto dx = at::empty_like(x);
  auto dwft_p = at::zeros({nthreads, C, H2}, x.options());  // dWf^T: u^T dh is the faster GEMM
  auto dwg_p = at::zeros({nthreads, C, Hd}, x.options());
  // per thread, the vector gradients: bf (H2), then bg, gamma, lnw, lnb, conv bias (C each), conv weight (KK*C)
  const int64_t V = H2 + 5 * C + KK * C;
  auto vec_p = at::zeros({nthreads, V}, x.options());
  const int64_t ntiles = (B + tile - 1) / tile;
  at::parallel_for(0, ntiles, 1, [&](int64_t begin, int64_t end) {
    at::NoGradGuard no_grad;
    const int64_t tid = at::get_thread_num();
    auto dwft = dwft_p[tid], dwg = dwg_p[tid];
    float* dbf = vec_p[tid].data_ptr<float>();
    float* dbg = dbf + H2; float* dgam = dbg + C; float* dlnw = dgam + C; float* dlnb = dlnw + C;
    float* ddwb = dlnb + C; float* ddwt = ddwb + C;
    const int64_t R = tile * HW;
    auto n = at::empty({R, C}, x.options()), nhat = at::empty({R, C}, x.options());
    auto z = at::empty({R, Hd}, x.options()), dz = at::empty({R, Hd}, x.options());
    auto dh = at::empty({R, H2}, x.options()), dout = at::empty({R, C}, x.options());
    auto du = at::empty({R, C}, x.options()), dn = at::empty({R, C}, x.options());
    const float* lw = lnw.data_ptr<float>(); const float* lb = lnb.data_ptr<float>();
    const float* gp = gamma.data_ptr<float>();
    for (int64_t t = begin; t < end; ++t) {
      const int64_t i0 = t * tile, imgs = std::min(tile, B - i0), r0 = i0 * HW, T = imgs * HW;
      const float* xp = x.data_ptr<float>() + r0 * C; const float* dyp = dy.data_ptr<float>() + r0 * C;
      const float* opp = o.data_ptr<float>() + r0 * C;
      const float* mp = mean.data_ptr<float>() + r0; const float* rp = rstd.data_ptr<float>() + r0;
      float* np_ = n.data_ptr<float>(); float* nh = nhat.data_ptr<float>(); float* dop = dout.data_ptr<float>();
      for (int64_t r = 0; r < T; ++r) {
        if (r + 2 * PREFETCH_ROWS < T)                   // x, dy, o: from memory too (C floats a row)
          for (int64_t q = 0; q < C; q += 16) {
            const int64_t i = (r + 2 * PREFETCH_ROWS) * C + q;
            __builtin_prefetch(xp + i, 0, 3); __builtin_prefetch(dyp + i, 0, 3); __builtin_prefetch(opp + i, 0, 3);
          }
        #pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          const int64_t i = r * C + c;
          nh[i] = (xp[i] - mp[r]) * rp[r];
          np_[i] = nh[i] * lw[c] + lb[c];
          dgam[c] += dyp[i] * opp[i];
          dop[i] = dyp[i] * gp[c];
          dbg[c] += dop[i];
        }
      }
      auto ut = u.narrow(0, r0, T), ht = h.narrow(0, r0, T), zt = z.narrow(0, 0, T);
      auto dzt = dz.narrow(0, 0, T), dht = dh.narrow(0, 0, T), dot = dout.narrow(0, 0, T), dut = du.narrow(0, 0, T);
      at::mm_out(dzt, dot, wg);                          // dz = dout wg
      act_merge_backward(ht.data_ptr<float>(), dzt.data_ptr<float>(), zt.data_ptr<float>(), dht.data_ptr<float>(),
                         dbf, T, Hd, act, op);
      dwg.addmm_(dot.t(), zt);                           // dWg += dout^T z
      dwft.addmm_(ut.t(), dht);                         // dWf^T += u^T dh
      at::mm_out(dut, dht, wf);                          // du = dh wf
      float* dnp = dn.data_ptr<float>();
      dwconv_backward(np_, wt.data_ptr<float>(), dut.data_ptr<float>(), dnp, ddwt, ddwb, imgs, H, W, C, k);
      float* dxp = dx.data_ptr<float>() + r0 * C;
      for (int64_t r = 0; r < T; ++r) {                  // LayerNorm backward, plus the residual's dy
        const float* d = dnp + r * C; const float* nr = nh + r * C;
        float m1 = 0.f, m2 = 0.f;
        #pragma omp simd reduction(+:m1, m2)
        for (int64_t c = 0; c < C; ++c) { const float g = d[c] * lw[c]; m1 += g; m2 += g * nr[c]; }
        m1 /= C; m2 /= C;
        #pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          dlnw[c] += d[c] * nr[c]; dlnb[c] += d[c];
          dxp[r * C + c] = dyp[r * C + c] + rp[r] * (d[c] * lw[c] - m1 - nr[c] * m2);
        }
      }
    }
  });
  auto vec = vec_p.sum(0);
  auto dwt = vec.narrow(0, H2 + 5 * C, KK * C).view({KK, C});
  return {dx, vec.narrow(0, H2 + 2 * C, C), vec.narrow(0, H2 + 3 * C, C), dwt.t().reshape({C, 1, k, k}),
          vec.narrow(0, H2 + 4 * C, C), dwft_p.sum(0).t().contiguous(), vec.narrow(0, 0, H2),
          dwg_p.sum(0), vec.narrow(0, H2, C), vec.narrow(0, H2 + C, C)};
}
