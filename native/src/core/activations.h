// Scalar nonlinearities shared by the forward pass and the heads.
#pragma once
#include <cmath>

namespace dupn {

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// Rows of a matrix: dst[m, :] = bias for m < M (the start of y = W x + b before the kernel accumulates).
inline void fill_rows(float* dst, int M, int N, const float* bias) {
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) dst[static_cast<long>(m) * N + n] = bias[n];
}

inline void relu(float* x, long n) {
  for (long i = 0; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

}  // namespace dupn
