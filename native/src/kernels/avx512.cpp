// AVX-512 kernel: 4 rows × 64 columns of C live in 16 zmm accumulators while K streams by; column
// tails use masks so every element sees the same FMA sequence as in the full tiles.
#include <immintrin.h>

#include "dupn/kernels.h"

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

}  // namespace

const KernelTable kernels::avx512 = {"avx512", sgemm_avx512, fma_peak_avx512};

}  // namespace dupn
