// AVX-512 kernels. The GEMM and the fused step are products512.h's, on fp32 (Fp32Product); the vector math
// is vecmath.h's on V512.
#include <immintrin.h>

#include <cstddef>

#include "dupn/kernels.h"
#include "products512.h"
#include "v512.h"

namespace dupn {
namespace {

// The fp32 product: one k per FMA. In the fused step, per element exactly GEMM-then-lstm_cell (the same FMA
// sequence from zero, + gx, and the same vector math).
struct Fp32Product {
  using E = float;
  using Out = std::nullptr_t;
  static __m512 load(const float* w) { return _mm512_loadu_ps(w); }
  static __m512 load_masked(__mmask16 m, const float* w) { return _mm512_maskz_loadu_ps(m, w); }
  static __m512 bcast(float a) { return _mm512_set1_ps(a); }
  static __m512 madd(__m512 acc, __m512 a, __m512 w) { return _mm512_fmadd_ps(a, w, acc); }
  static Out rows(Out, int) { return nullptr; }
  static void cell(__m512 zi, __m512 zf, __m512 zg, __m512 zo, const float* x, float* c, float* h, Out, int, int) {
    vecmath::cell_block<V512>(zi, zf, zg, zo, x, c, h);
  }
};

void sgemm_avx512(int M, int N, int K, const float* A, int lda, const float* B, float* C, int ldc, bool accumulate,
                  const float* bias) {
  Gemm512<Fp32Product>::run(M, N, K, A, lda, B, C, ldc, accumulate, bias);
}

double fma_peak_avx512(int64_t iterations) {
  // 16 independent chains cover FMA latency × throughput on current cores.
  __m512 acc[16];
  for (int j = 0; j < 16; ++j) acc[j] = _mm512_set1_ps(static_cast<float>(j));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-6f);
  for (int64_t i = 0; i < iterations; ++i)
    for (int j = 0; j < 16; ++j) acc[j] = _mm512_fmadd_ps(acc[j], a, b);
  __m512 sum = acc[0];
  for (int j = 1; j < 16; ++j) sum = _mm512_add_ps(sum, acc[j]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, sum);
  volatile float sink = lanes[0] + lanes[15];
  (void)sink;
  return static_cast<double>(iterations) * 16 * 16 * 2;
}

void lstm_cell_avx512(int H, const float* z, const float* gx, float* c, float* h) { vecmath::lstm_cell<V512>(H, z, gx, c, h); }

void lstm_step_avx512(int Mrows, int H, const float* h_prev, int hp, const float* wh, int gp, const float* const* gx, float* c,
                      float* h_next) {
  Step512<Fp32Product>::run(Mrows, H, h_prev, hp, wh, gp, gx, c, h_next, hp, nullptr);
}

float tanh_dot_avx512(int A, const float* s, const float* b, const float* v) { return vecmath::tanh_dot<V512>(A, s, b, v); }
void lstm_cell_train_avx512(int H, float* pre, const float* c_prev, float* c, float* tc, float* h) {
  vecmath::lstm_cell_train<V512>(H, pre, c_prev, c, tc, h);
}
void tanh_map_avx512(int n, const float* x, float* y) { vecmath::tanh_map<V512>(n, x, y); }
void relu_dot_avx512(int M, int K, const float* x, int ldx, const float* w, float bias, float* out) {
  vecmath::relu_dot<V512>(M, K, x, ldx, w, bias, out);
}

}  // namespace

const KernelTable kernels::avx512 = {"avx512", sgemm_avx512, fma_peak_avx512, lstm_cell_avx512, tanh_dot_avx512, lstm_step_avx512, 16,
                                       lstm_cell_train_avx512, tanh_map_avx512, relu_dot_avx512, false};

}  // namespace dupn
