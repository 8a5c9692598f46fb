// AVX2+FMA kernel: 4 rows × 16 columns of C in 8 ymm accumulators; column tails use masked loads so
// every element sees the same FMA sequence as in the full tiles.
#include <immintrin.h>

#include "dupn/kernels.h"

namespace dupn {
namespace {

inline __m256i mask_for(int remaining) {
  const int n = remaining < 0 ? 0 : (remaining > 8 ? 8 : remaining);
  alignas(32) static const int32_t table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(table + 8 - n));
}

template <int MR>
inline void tile(int K, const float* A, int lda, const float* B, int N, float* C, int ldc, int n0, __m256i k0,
                 __m256i k1, bool accumulate) {
  __m256 acc[MR][2];
  const __m256i masks[2] = {k0, k1};
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < 2; ++j)
      acc[r][j] = accumulate ? _mm256_maskload_ps(C + static_cast<int64_t>(r) * ldc + n0 + 8 * j, masks[j])
                             : _mm256_setzero_ps();
  for (int k = 0; k < K; ++k) {
    const float* b = B + static_cast<int64_t>(k) * N + n0;
    const __m256 b0 = _mm256_maskload_ps(b, k0), b1 = _mm256_maskload_ps(b + 8, k1);
    for (int r = 0; r < MR; ++r) {
      const __m256 av = _mm256_broadcast_ss(A + static_cast<int64_t>(r) * lda + k);
      acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < 2; ++j) _mm256_maskstore_ps(C + static_cast<int64_t>(r) * ldc + n0 + 8 * j, masks[j], acc[r][j]);
}

void sgemm_avx2(int M, int N, int K, const float* A, int lda, const float* B, float* C, int ldc,
                bool accumulate) {
  for (int n0 = 0; n0 < N; n0 += 16) {
    const __m256i k0 = mask_for(N - n0), k1 = mask_for(N - n0 - 8);
    int m = 0;
    for (; m + 4 <= M; m += 4)
      tile<4>(K, A + static_cast<int64_t>(m) * lda, lda, B, N, C + static_cast<int64_t>(m) * ldc, ldc, n0, k0, k1, accumulate);
    for (; m < M; ++m)
      tile<1>(K, A + static_cast<int64_t>(m) * lda, lda, B, N, C + static_cast<int64_t>(m) * ldc, ldc, n0, k0, k1, accumulate);
  }
}

double fma_peak_avx2(int64_t iterations) {
  __m256 acc[12];
  for (int j = 0; j < 12; ++j) acc[j] = _mm256_set1_ps(static_cast<float>(j));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-6f);
  for (int64_t i = 0; i < iterations; ++i)
    for (int j = 0; j < 12; ++j) acc[j] = _mm256_fmadd_ps(acc[j], a, b);
  __m256 sum = acc[0];
  for (int j = 1; j < 12; ++j) sum = _mm256_add_ps(sum, acc[j]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  volatile float sink = lanes[0] + lanes[7];
  (void)sink;
  return static_cast<double>(iterations) * 12 * 8 * 2;
}

}  // namespace

const KernelTable kernels::avx2 = {"avx2", sgemm_avx2, fma_peak_avx2};

}  // namespace dupn
