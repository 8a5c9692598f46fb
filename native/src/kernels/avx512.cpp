// AVX-512 kernels. The GEMM keeps 6 rows × 64 columns of C in 24 zmm accumulators while K streams by (the
// last 1–5 rows: a tile of that many); column tails use masks so every element sees the same FMA sequence
// as in the full tiles.
#include <immintrin.h>

#include "avx512_mask.h"
#include <cstddef>

#include "dupn/kernels.h"
#include "step512.h"
#include "v512.h"

namespace dupn {
namespace {

// MR rows × NV·16 columns of C in MR × NV zmm accumulators (NV = 4 but in a last, narrower column block).
// kMasked handles the last, partial column block; full blocks load unmasked. Accumulators are named per
// column vector (no masks array) so the compiler keeps all of them in registers: 6 × 4 + 4 + 1 = 29 of the
// 32 zmm. A tail of 16 columns (N = 80: the input gradient of the LSTM's 80 input features) computes one vector,
// not four with three masked off.
template <int MR, int NV, bool kMasked>
inline void tile(int K, const float* A, int lda, const float* B, int N, float* C, int ldc, __mmask16 m0, __mmask16 m1,
                 __mmask16 m2, __mmask16 m3, bool accumulate, const float* bias) {
  auto ld = [&](const float* p, __mmask16 m) { return kMasked ? _mm512_maskz_loadu_ps(m, p) : _mm512_loadu_ps(p); };
  auto st = [&](float* p, __mmask16 m, __m512 v) {
    if (kMasked) _mm512_mask_storeu_ps(p, m, v);
    else _mm512_storeu_ps(p, v);
  };
  __m512 c0[MR], c1[MR], c2[MR], c3[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    const float* c = C + static_cast<int64_t>(r) * ldc;
    const float* from = bias ? bias : c;
    c0[r] = bias || accumulate ? ld(from, m0) : _mm512_setzero_ps();
    if constexpr (NV > 1) c1[r] = bias || accumulate ? ld(from + 16, m1) : _mm512_setzero_ps();
    if constexpr (NV > 2) c2[r] = bias || accumulate ? ld(from + 32, m2) : _mm512_setzero_ps();
    if constexpr (NV > 3) c3[r] = bias || accumulate ? ld(from + 48, m3) : _mm512_setzero_ps();
  }
  for (int k = 0; k < K; ++k) {
    const float* b = B + static_cast<int64_t>(k) * N;
    const __m512 b0 = ld(b, m0);
    __m512 b1, b2, b3;
    if constexpr (NV > 1) b1 = ld(b + 16, m1);
    if constexpr (NV > 2) b2 = ld(b + 32, m2);
    if constexpr (NV > 3) b3 = ld(b + 48, m3);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 av = _mm512_set1_ps(A[static_cast<int64_t>(r) * lda + k]);
      c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
      if constexpr (NV > 1) c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
      if constexpr (NV > 2) c2[r] = _mm512_fmadd_ps(av, b2, c2[r]);
      if constexpr (NV > 3) c3[r] = _mm512_fmadd_ps(av, b3, c3[r]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    float* c = C + static_cast<int64_t>(r) * ldc;
    st(c, m0, c0[r]);
    if constexpr (NV > 1) st(c + 16, m1, c1[r]);
    if constexpr (NV > 2) st(c + 32, m2, c2[r]);
    if constexpr (NV > 3) st(c + 48, m3, c3[r]);
  }
}

template <int NV, bool kMasked>
void column_block(int M, int N, int K, const float* A, int lda, const float* B, float* C, int ldc, int n0, bool accumulate,
                  const float* bias) {
  const int rem = N - n0;
  if (bias) bias += n0;
  const __mmask16 m0 = mask16(rem), m1 = mask16(rem - 16), m2 = mask16(rem - 32), m3 = mask16(rem - 48);
  const float* b = B + n0;
  float* c = C + n0;
  int m = 0;
  for (; m + 6 <= M; m += 6)
    tile<6, NV, kMasked>(K, A + static_cast<int64_t>(m) * lda, lda, b, N, c + static_cast<int64_t>(m) * ldc, ldc, m0, m1, m2, m3, accumulate, bias);
  const float* a = A + static_cast<int64_t>(m) * lda;
  c += static_cast<int64_t>(m) * ldc;
  switch (M - m) {
    case 5: tile<5, NV, kMasked>(K, a, lda, b, N, c, ldc, m0, m1, m2, m3, accumulate, bias); break;
    case 4: tile<4, NV, kMasked>(K, a, lda, b, N, c, ldc, m0, m1, m2, m3, accumulate, bias); break;
    case 3: tile<3, NV, kMasked>(K, a, lda, b, N, c, ldc, m0, m1, m2, m3, accumulate, bias); break;
    case 2: tile<2, NV, kMasked>(K, a, lda, b, N, c, ldc, m0, m1, m2, m3, accumulate, bias); break;
    case 1: tile<1, NV, kMasked>(K, a, lda, b, N, c, ldc, m0, m1, m2, m3, accumulate, bias); break;
    default: break;
  }
}

// The last, partial column block [n0, N): as many vectors as it has columns.
void tail_block(int M, int N, int K, const float* A, int lda, const float* B, float* C, int ldc, int n0, bool accumulate,
                const float* bias) {
  switch ((N - n0 + 15) / 16) {
    case 1: return column_block<1, true>(M, N, K, A, lda, B, C, ldc, n0, accumulate, bias);
    case 2: return column_block<2, true>(M, N, K, A, lda, B, C, ldc, n0, accumulate, bias);
    case 3: return column_block<3, true>(M, N, K, A, lda, B, C, ldc, n0, accumulate, bias);
    default: return column_block<4, true>(M, N, K, A, lda, B, C, ldc, n0, accumulate, bias);
  }
}

// One row (the recurrence at B = 1): 256 columns at a time in 16 independent accumulators, each row of
// B read front to back. Every element sees the same FMA sequence as in the tiles above, so a row's
// result does not depend on which path computed it.
void row_avx512(int N, int K, const float* a, const float* B, float* c, bool accumulate, const float* bias) {
  int n0 = 0;
  for (; n0 + 256 <= N; n0 += 256) {
    __m512 acc[16];
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j)
      acc[j] = bias ? _mm512_loadu_ps(bias + n0 + 16 * j) : accumulate ? _mm512_loadu_ps(c + n0 + 16 * j) : _mm512_setzero_ps();
    for (int k = 0; k < K; ++k) {
      const __m512 av = _mm512_set1_ps(a[k]);
      const float* b = B + static_cast<int64_t>(k) * N + n0;
#pragma GCC unroll 16
      for (int j = 0; j < 16; ++j) acc[j] = _mm512_fmadd_ps(av, _mm512_loadu_ps(b + 16 * j), acc[j]);
    }
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) _mm512_storeu_ps(c + n0 + 16 * j, acc[j]);
  }
  for (; n0 + 64 <= N; n0 += 64) column_block<4, false>(1, N, K, a, K, B, c, N, n0, accumulate, bias);
  if (n0 < N) tail_block(1, N, K, a, K, B, c, N, n0, accumulate, bias);
}

// Column blocks outermost: one 64-column panel of B (K × 64 floats) stays in L1 while every row of A
// streams past it.
void sgemm_avx512(int M, int N, int K, const float* A, int lda, const float* B, float* C, int ldc,
                  bool accumulate, const float* bias) {
  if (M == 1) return row_avx512(N, K, A, B, C, accumulate, bias);
  int n0 = 0;
  for (; n0 + 64 <= N; n0 += 64) column_block<4, false>(M, N, K, A, lda, B, C, ldc, n0, accumulate, bias);
  if (n0 < N) tail_block(M, N, K, A, lda, B, C, ldc, n0, accumulate, bias);
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


// The fp32 product of the fused step: per element exactly GEMM-then-lstm_cell (the same FMA sequence from
// zero, + gx, and the same vector math).
struct Fp32Product {
  using E = float;
  using Out = std::nullptr_t;
  static __m512 load(const float* w) { return _mm512_loadu_ps(w); }
  static __m512 bcast(float a) { return _mm512_set1_ps(a); }
  static __m512 madd(__m512 acc, __m512 a, __m512 w) { return _mm512_fmadd_ps(a, w, acc); }
  static Out rows(Out, int) { return nullptr; }
  static void cell(__m512 zi, __m512 zf, __m512 zg, __m512 zo, const float* x, float* c, float* h, Out, int, int) {
    vecmath::cell_block<V512>(zi, zf, zg, zo, x, c, h);
  }
};

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
