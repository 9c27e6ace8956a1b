// The activations every kernel knows, by the code it takes (act: 0 identity, 1 ReLU, 2 ReLU6; the table of codes is
// starnet/kernels/codes.py). act_f is the activation, act_d its derivative. A kernel's .cpp includes this first;
// _build.py puts the text in its place (the kernels are compiled from one string: see _build.source).
#ifndef STARBENCH_ACTIVATIONS_H
#define STARBENCH_ACTIVATIONS_H
#include <cstdint>
static inline float act_f(float v, int64_t act) {
  if (act == 0) return v;
  v = v > 0.f ? v : 0.f;
  return act == 2 ? (v < 6.f ? v : 6.f) : v;
}
// The derivative, from the input or (same result for these) the output; 0 at the kinks, as PyTorch.
static inline float act_d(float v, int64_t act) {
  if (act == 0) return 1.f;
  if (act == 1) return v > 0.f ? 1.f : 0.f;
  return (v > 0.f && v < 6.f) ? 1.f : 0.f;
}
#endif
