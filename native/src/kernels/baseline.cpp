// The baseline kernels (isa "baseline", the path every CPU runs): plain loops the compiler may vectorise for
// the build's base target only (x86-64-v2 on x64).
#include <cmath>

#include "dupn/kernels.h"

namespace dupn {
namespace {

void sgemm_baseline(int M, int N, int K, const float* A, int lda, const float* B, float* C, int ldc,
                    bool accumulate, const float* bias) {
  for (int m = 0; m < M; ++m) {
    float* c = C + static_cast<int64_t>(m) * ldc;
    if (bias)
      for (int n = 0; n < N; ++n) c[n] = bias[n];
    else if (!accumulate)
      for (int n = 0; n < N; ++n) c[n] = 0.0f;
    const float* a = A + static_cast<int64_t>(m) * lda;
    for (int k = 0; k < K; ++k) {
      const float av = a[k];
      const float* b = B + static_cast<int64_t>(k) * N;
      for (int n = 0; n < N; ++n) c[n] += av * b[n];
    }
  }
}

double fma_peak_baseline(int64_t iterations) {
  float acc[16];
  for (int j = 0; j < 16; ++j) acc[j] = static_cast<float>(j);
  for (int64_t i = 0; i < iterations; ++i)
    for (int j = 0; j < 16; ++j) acc[j] = acc[j] * 0.999999f + 1e-6f;
  float sum = 0.0f;
  for (int j = 0; j < 16; ++j) sum += acc[j];
  volatile float sink = sum;
  (void)sink;
  return static_cast<double>(iterations) * 16 * 2;
}

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

void lstm_cell_baseline(int H, const float* z, const float* gx, float* c, float* h) {
  for (int q = 0; q < H; ++q) {
    const float ig = sigmoid(z[q] + gx[q]);
    const float fg = sigmoid(z[H + q] + gx[H + q]);
    const float gg = std::tanh(z[2 * H + q] + gx[2 * H + q]);
    const float og = sigmoid(z[3 * H + q] + gx[3 * H + q]);
    c[q] = fg * c[q] + ig * gg;
    h[q] = og * std::tanh(c[q]);
  }
}

float tanh_dot_baseline(int A, const float* s, const float* b, const float* v) {
  float acc = 0.0f;
  for (int a = 0; a < A; ++a) acc += v[a] * std::tanh(s[a] + b[a]);
  return acc;
}

void lstm_cell_train_baseline(int H, float* pre, const float* c_prev, float* c, float* tc, float* h) {
  for (int q = 0; q < H; ++q) {
    const float ig = sigmoid(pre[q]), fg = sigmoid(pre[H + q]), gg = std::tanh(pre[2 * H + q]), og = sigmoid(pre[3 * H + q]);
    const float cn = fg * c_prev[q] + ig * gg;
    pre[q] = ig;
    pre[H + q] = fg;
    pre[2 * H + q] = gg;
    pre[3 * H + q] = og;
    c[q] = cn;
    tc[q] = std::tanh(cn);
    h[q] = og * tc[q];
  }
}

void tanh_map_baseline(int n, const float* x, float* y) {
  for (int i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

void relu_dot_baseline(int M, int K, const float* x, int ldx, const float* w, float bias, float* out) {
  for (int m = 0; m < M; ++m) {
    const float* row = x + static_cast<long>(m) * ldx;
    float acc = 0.0f;
    for (int k = 0; k < K; ++k) acc += (row[k] > 0.0f ? row[k] : 0.0f) * w[k];
    out[m] = bias + acc;
  }
}

}  // namespace

const KernelTable kernels::baseline = {"baseline", sgemm_baseline, fma_peak_baseline, lstm_cell_baseline, tanh_dot_baseline, nullptr, 0,
                                         lstm_cell_train_baseline, tanh_map_baseline, relu_dot_baseline, false};

}  // namespace dupn
