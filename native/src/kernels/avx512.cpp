// AVX-512 kernels. The GEMM keeps 6 rows × 64 columns of C in 24 zmm accumulators while K streams by (the
// last 1–5 rows: a tile of that many); column tails use masks so every element sees the same FMA sequence
// as in the full tiles.
#include <immintrin.h>

#include "avx512_mask.h"
#include "dupn/kernels.h"
#include "vecmath.h"

namespace dupn {
namespace {

// MR rows × NV·16 columns of C in MR × NV zmm accumulators (NV = 4 but in a last, narrower column block).
// kMasked handles the last, partial column block; full blocks load unmasked. Accumulators are named per
// column vector (no masks array) so the compiler keeps all of them in registers: 6 × 4 + 4 + 1 = 29 of the
// 32 zmm. A tail of 16 columns (N = 80: the input gradient of the LSTM's 80 input features) computes one vector,
// not four with three masked off.
template <int MR, int NV, bool kMasked>
inline void tile(int K, const float* A, int lda, const float* B, int N, float* C, int ldc, __mmask16 m0, __mmask16 m1,
                 __mmask16 m2, __mmask16 m3, bool accumulate) {
  auto ld = [&](const float* p, __mmask16 m) { return kMasked ? _mm512_maskz_loadu_ps(m, p) : _mm512_loadu_ps(p); };
  auto st = [&](float* p, __mmask16 m, __m512 v) {
    if (kMasked) _mm512_mask_storeu_ps(p, m, v);
    else _mm512_storeu_ps(p, v);
  };
  __m512 c0[MR], c1[MR], c2[MR], c3[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    const float* c = C + static_cast<int64_t>(r) * ldc;
    c0[r] = accumulate ? ld(c, m0) : _mm512_setzero_ps();
    if constexpr (NV > 1) c1[r] = accumulate ? ld(c + 16, m1) : _mm512_setzero_ps();
    if constexpr (NV > 2) c2[r] = accumulate ? ld(c + 32, m2) : _mm512_setzero_ps();
    if constexpr (NV > 3) c3[r] = accumulate ? ld(c + 48, m3) : _mm512_setzero_ps();
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
void column_block(int M, int N, int K, const float* A, int lda, const float* B, float* C, int ldc, int n0, bool accumulate) {
  const int rem = N - n0;
  const __mmask16 m0 = mask16(rem), m1 = mask16(rem - 16), m2 = mask16(rem - 32), m3 = mask16(rem - 48);
  const float* b = B + n0;
  float* c = C + n0;
  int m = 0;
  for (; m + 6 <= M; m += 6)
    tile<6, NV, kMasked>(K, A + static_cast<int64_t>(m) * lda, lda, b, N, c + static_cast<int64_t>(m) * ldc, ldc, m0, m1, m2, m3, accumulate);
  const float* a = A + static_cast<int64_t>(m) * lda;
  c += static_cast<int64_t>(m) * ldc;
  switch (M - m) {
    case 5: tile<5, NV, kMasked>(K, a, lda, b, N, c, ldc, m0, m1, m2, m3, accumulate); break;
    case 4: tile<4, NV, kMasked>(K, a, lda, b, N, c, ldc, m0, m1, m2, m3, accumulate); break;
    case 3: tile<3, NV, kMasked>(K, a, lda, b, N, c, ldc, m0, m1, m2, m3, accumulate); break;
    case 2: tile<2, NV, kMasked>(K, a, lda, b, N, c, ldc, m0, m1, m2, m3, accumulate); break;
    case 1: tile<1, NV, kMasked>(K, a, lda, b, N, c, ldc, m0, m1, m2, m3, accumulate); break;
    default: break;
  }
}

// The last, partial column block [n0, N): as many vectors as it has columns.
void tail_block(int M, int N, int K, const float* A, int lda, const float* B, float* C, int ldc, int n0, bool accumulate) {
  switch ((N - n0 + 15) / 16) {
    case 1: return column_block<1, true>(M, N, K, A, lda, B, C, ldc, n0, accumulate);
    case 2: return column_block<2, true>(M, N, K, A, lda, B, C, ldc, n0, accumulate);
    case 3: return column_block<3, true>(M, N, K, A, lda, B, C, ldc, n0, accumulate);
    default: return column_block<4, true>(M, N, K, A, lda, B, C, ldc, n0, accumulate);
  }
}

// One row (the recurrence at B = 1): 256 columns at a time in 16 independent accumulators, each row of
// B read front to back. Every element sees the same FMA sequence as in the tiles above, so a row's
// result does not depend on which path computed it.
void row_avx512(int N, int K, const float* a, const float* B, float* c, bool accumulate) {
  int n0 = 0;
  for (; n0 + 256 <= N; n0 += 256) {
    __m512 acc[16];
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) acc[j] = accumulate ? _mm512_loadu_ps(c + n0 + 16 * j) : _mm512_setzero_ps();
    for (int k = 0; k < K; ++k) {
      const __m512 av = _mm512_set1_ps(a[k]);
      const float* b = B + static_cast<int64_t>(k) * N + n0;
#pragma GCC unroll 16
      for (int j = 0; j < 16; ++j) acc[j] = _mm512_fmadd_ps(av, _mm512_loadu_ps(b + 16 * j), acc[j]);
    }
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) _mm512_storeu_ps(c + n0 + 16 * j, acc[j]);
  }
  for (; n0 + 64 <= N; n0 += 64) column_block<4, false>(1, N, K, a, K, B, c, N, n0, accumulate);
  if (n0 < N) tail_block(1, N, K, a, K, B, c, N, n0, accumulate);
}

// Column blocks outermost: one 64-column panel of B (K × 64 floats) stays in L1 while every row of A
// streams past it.
void sgemm_avx512(int M, int N, int K, const float* A, int lda, const float* B, float* C, int ldc,
                  bool accumulate) {
  if (M == 1) return row_avx512(N, K, A, B, C, accumulate);
  int n0 = 0;
  for (; n0 + 64 <= N; n0 += 64) column_block<4, false>(M, N, K, A, lda, B, C, ldc, n0, accumulate);
  if (n0 < N) tail_block(M, N, K, A, lda, B, C, ldc, n0, accumulate);
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

struct V512 {
  using T = __m512;
  using Mask = __mmask16;
  static constexpr int kWidth = 16;
  static T set1(float x) { return _mm512_set1_ps(x); }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
  static T sub(T a, T b) { return _mm512_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static T rcp(T a) { return _mm512_rcp14_ps(a); }
  static T min(T a, T b) { return _mm512_min_ps(a, b); }
  static T max(T a, T b) { return _mm512_max_ps(a, b); }
  static T round(T x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static T scale2(T y, T n) { return _mm512_scalef_ps(y, n); }
  static T abs(T x) { return _mm512_abs_ps(x); }
  static T copysign(T mag, T sign) {
    const __m512i m = _mm512_set1_epi32(static_cast<int>(0x80000000u));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_andnot_si512(m, _mm512_castps_si512(mag)),
                                               _mm512_and_si512(m, _mm512_castps_si512(sign))));
  }
  static Mask less(T a, T b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static T select(Mask m, T a, T b) { return _mm512_mask_blend_ps(m, b, a); }
  static T load(const float* p, int n) { return n == kWidth ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(mask16(n), p); }
  static void store(float* p, T v, int n) {
    if (n == kWidth) _mm512_storeu_ps(p, v);
    else _mm512_mask_storeu_ps(p, mask16(n), v);
  }
  static float sum(T v) {
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, v);
    float s = 0.0f;
    for (float x : lanes) s += x;
    return s;
  }
};

void lstm_cell_avx512(int H, const float* z, const float* gx, float* c, float* h) { vecmath::lstm_cell<V512>(H, z, gx, c, h); }


// MR rows × one block of 16 units (64 interleaved columns i | f | g | o): the recurrent product in 4 × MR
// accumulators, then the cell update on them. Per element this is exactly GEMM-then-lstm_cell: the same
// FMA sequence from zero, + gx, and the same vector math.
template <int MR>
inline void step_tile(int H, const float* A, int lda, const float* W, int gp, int n0, const float* const* gx, float* c,
                      float* h, int hp, int u0) {
  __m512 zi[MR], zf[MR], zg[MR], zo[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) zi[r] = zf[r] = zg[r] = zo[r] = _mm512_setzero_ps();
  for (int k = 0; k < H; ++k) {
    const float* w = W + static_cast<int64_t>(k) * gp + n0;
    const __m512 wi = _mm512_loadu_ps(w), wf = _mm512_loadu_ps(w + 16), wg = _mm512_loadu_ps(w + 32), wo = _mm512_loadu_ps(w + 48);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 av = _mm512_set1_ps(A[static_cast<int64_t>(r) * lda + k]);
      zi[r] = _mm512_fmadd_ps(av, wi, zi[r]);
      zf[r] = _mm512_fmadd_ps(av, wf, zf[r]);
      zg[r] = _mm512_fmadd_ps(av, wg, zg[r]);
      zo[r] = _mm512_fmadd_ps(av, wo, zo[r]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
    vecmath::cell_block<V512>(zi[r], zf[r], zg[r], zo[r], gx[r] + n0, c + static_cast<int64_t>(r) * hp + u0, h + static_cast<int64_t>(r) * hp + u0);
}

void lstm_step_avx512(int Mrows, int H, const float* h_prev, int hp, const float* wh, int gp, const float* const* gx, float* c,
                      float* h_next) {
  int start = 0;
  if (Mrows == 1) {
    // One row (B = 1): four blocks at once in 16 accumulators, each row of W_h read front to back.
    for (; start + 256 <= gp; start += 256) {
      __m512 acc[16];
#pragma GCC unroll 16
      for (int j = 0; j < 16; ++j) acc[j] = _mm512_setzero_ps();
      for (int k = 0; k < H; ++k) {
        const __m512 av = _mm512_set1_ps(h_prev[k]);
        const float* w = wh + static_cast<int64_t>(k) * gp + start;
#pragma GCC unroll 16
        for (int j = 0; j < 16; ++j) acc[j] = _mm512_fmadd_ps(av, _mm512_loadu_ps(w + 16 * j), acc[j]);
      }
      for (int q = 0; q < 4; ++q) {
        const int u0 = start / 4 + 16 * q;
        vecmath::cell_block<V512>(acc[4 * q], acc[4 * q + 1], acc[4 * q + 2], acc[4 * q + 3], gx[0] + start + 64 * q, c + u0, h_next + u0);
      }
    }
  }
  for (int n0 = start, u0 = start / 4; n0 < gp; n0 += 64, u0 += 16) {
    int m = 0;
    for (; m + 6 <= Mrows; m += 6) {
      const int64_t off = static_cast<int64_t>(m) * hp;
      step_tile<6>(H, h_prev + off, hp, wh, gp, n0, gx + m, c + off, h_next + off, hp, u0);
    }
    const int64_t off = static_cast<int64_t>(m) * hp;
    switch (Mrows - m) {
      case 5: step_tile<5>(H, h_prev + off, hp, wh, gp, n0, gx + m, c + off, h_next + off, hp, u0); break;
      case 4: step_tile<4>(H, h_prev + off, hp, wh, gp, n0, gx + m, c + off, h_next + off, hp, u0); break;
      case 3: step_tile<3>(H, h_prev + off, hp, wh, gp, n0, gx + m, c + off, h_next + off, hp, u0); break;
      case 2: step_tile<2>(H, h_prev + off, hp, wh, gp, n0, gx + m, c + off, h_next + off, hp, u0); break;
      case 1: step_tile<1>(H, h_prev + off, hp, wh, gp, n0, gx + m, c + off, h_next + off, hp, u0); break;
      default: break;
    }
  }
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
