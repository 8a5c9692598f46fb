// AVX-512 kernel: 4 rows × 64 columns of C live in 16 zmm accumulators while K streams by; column
// tails use masks so every element sees the same FMA sequence as in the full tiles.
#include <immintrin.h>

#include "dupn/kernels.h"
#include "vecmath.h"

namespace dupn {
namespace {

template <int MR>
inline void tile(int K, const float* A, int lda, const float* B, int N, float* C, int ldc, int n0,
                 __mmask16 m0, __mmask16 m1, __mmask16 m2, __mmask16 m3, bool accumulate) {
  __m512 acc[MR][4];
  const __mmask16 masks[4] = {m0, m1, m2, m3};
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < 4; ++j)
      acc[r][j] = accumulate ? _mm512_maskz_loadu_ps(masks[j], C + static_cast<int64_t>(r) * ldc + n0 + 16 * j)
                             : _mm512_setzero_ps();
  for (int k = 0; k < K; ++k) {
    const float* b = B + static_cast<int64_t>(k) * N + n0;
    __m512 bv[4];
    for (int j = 0; j < 4; ++j) bv[j] = _mm512_maskz_loadu_ps(masks[j], b + 16 * j);
    for (int r = 0; r < MR; ++r) {
      const __m512 av = _mm512_set1_ps(A[static_cast<int64_t>(r) * lda + k]);
      for (int j = 0; j < 4; ++j) acc[r][j] = _mm512_fmadd_ps(av, bv[j], acc[r][j]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < 4; ++j) _mm512_mask_storeu_ps(C + static_cast<int64_t>(r) * ldc + n0 + 16 * j, masks[j], acc[r][j]);
}

inline __mmask16 mask_for(int remaining) {
  if (remaining >= 16) return 0xFFFF;
  if (remaining <= 0) return 0;
  return static_cast<__mmask16>((1u << remaining) - 1u);
}

void sgemm_avx512(int M, int N, int K, const float* A, int lda, const float* B, float* C, int ldc,
                  bool accumulate) {
  for (int n0 = 0; n0 < N; n0 += 64) {
    const int rem = N - n0;
    const __mmask16 m0 = mask_for(rem), m1 = mask_for(rem - 16), m2 = mask_for(rem - 32), m3 = mask_for(rem - 48);
    int m = 0;
    for (; m + 4 <= M; m += 4)
      tile<4>(K, A + static_cast<int64_t>(m) * lda, lda, B, N, C + static_cast<int64_t>(m) * ldc, ldc, n0, m0, m1, m2, m3, accumulate);
    for (; m < M; ++m)
      tile<1>(K, A + static_cast<int64_t>(m) * lda, lda, B, N, C + static_cast<int64_t>(m) * ldc, ldc, n0, m0, m1, m2, m3, accumulate);
  }
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
  static T div(T a, T b) { return _mm512_div_ps(a, b); }
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
  static T load(const float* p, int n) { return n == kWidth ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(mask_for(n), p); }
  static void store(float* p, T v, int n) {
    if (n == kWidth) _mm512_storeu_ps(p, v);
    else _mm512_mask_storeu_ps(p, mask_for(n), v);
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
float tanh_dot_avx512(int A, const float* s, const float* b, const float* v) { return vecmath::tanh_dot<V512>(A, s, b, v); }

}  // namespace

const KernelTable kernels::avx512 = {"avx512", sgemm_avx512, fma_peak_avx512, lstm_cell_avx512, tanh_dot_avx512};

}  // namespace dupn
