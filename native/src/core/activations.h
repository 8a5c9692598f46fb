// Scalar nonlinearities shared by the forward pass and the heads.
#pragma once
#include <cmath>

namespace dupn {

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

inline void relu(float* x, long n) {
  for (long i = 0; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

}  // namespace dupn
