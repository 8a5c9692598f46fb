// AVX-512-BF16 kernels for precision "bf16": the same 6 × 64 register tile as the fp32 AVX-512 GEMM,
// but each vdpbf16ps multiplies two k at once (32 products per instruction), accumulating in fp32; and the
// fused recurrent step on the same products, with the cell in FastMath.
#include <immintrin.h>

#include <cstring>

#include "avx512_mask.h"
#include "dupn/kernels.h"
#include "step512.h"
#include "v512.h"

namespace dupn {
namespace {

template <int MR>
inline void tile(int K2, const uint32_t* A, int lda, const uint32_t* B, int N, float* C, int ldc, __mmask16 m0,
                 __mmask16 m1, __mmask16 m2, __mmask16 m3, bool accumulate, const float* bias) {
  __m512 c0[MR], c1[MR], c2[MR], c3[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    const float* c = C + static_cast<int64_t>(r) * ldc;
    const float* from = bias ? bias : c;
    c0[r] = bias || accumulate ? _mm512_maskz_loadu_ps(m0, from) : _mm512_setzero_ps();
    c1[r] = bias || accumulate ? _mm512_maskz_loadu_ps(m1, from + 16) : _mm512_setzero_ps();
    c2[r] = bias || accumulate ? _mm512_maskz_loadu_ps(m2, from + 32) : _mm512_setzero_ps();
    c3[r] = bias || accumulate ? _mm512_maskz_loadu_ps(m3, from + 48) : _mm512_setzero_ps();
  }
  for (int k = 0; k < K2; ++k) {
    const uint32_t* b = B + static_cast<int64_t>(k) * N;
    const __m512bh b0 = (__m512bh)_mm512_maskz_loadu_epi32(m0, b), b1 = (__m512bh)_mm512_maskz_loadu_epi32(m1, b + 16),
                   b2 = (__m512bh)_mm512_maskz_loadu_epi32(m2, b + 32), b3 = (__m512bh)_mm512_maskz_loadu_epi32(m3, b + 48);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(static_cast<int>(A[static_cast<int64_t>(r) * lda + k]));
      c0[r] = _mm512_dpbf16_ps(c0[r], av, b0);
      c1[r] = _mm512_dpbf16_ps(c1[r], av, b1);
      c2[r] = _mm512_dpbf16_ps(c2[r], av, b2);
      c3[r] = _mm512_dpbf16_ps(c3[r], av, b3);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    float* c = C + static_cast<int64_t>(r) * ldc;
    _mm512_mask_storeu_ps(c, m0, c0[r]);
    _mm512_mask_storeu_ps(c + 16, m1, c1[r]);
    _mm512_mask_storeu_ps(c + 32, m2, c2[r]);
    _mm512_mask_storeu_ps(c + 48, m3, c3[r]);
  }
}

void gemm_bf16(int M, int N, int K2, const uint32_t* A, int lda, const uint32_t* B, float* C, int ldc, bool accumulate,
               const float* bias) {
  int n_start = 0;
  if (M == 1) {
    // One row (the recurrence at B = 1): 256 columns at a time, each row of B read front to back; the
    // same dot-product sequence per element as the tiles, so the result does not depend on the path.
    for (; n_start + 256 <= N; n_start += 256) {
      __m512 acc[16];
#pragma GCC unroll 16
      for (int j = 0; j < 16; ++j)
        acc[j] = bias ? _mm512_loadu_ps(bias + n_start + 16 * j) : accumulate ? _mm512_loadu_ps(C + n_start + 16 * j) : _mm512_setzero_ps();
      for (int k = 0; k < K2; ++k) {
        const __m512bh av = (__m512bh)_mm512_set1_epi32(static_cast<int>(A[k]));
        const uint32_t* b = B + static_cast<int64_t>(k) * N + n_start;
#pragma GCC unroll 16
        for (int j = 0; j < 16; ++j) acc[j] = _mm512_dpbf16_ps(acc[j], av, (__m512bh)_mm512_loadu_si512(b + 16 * j));
      }
#pragma GCC unroll 16
      for (int j = 0; j < 16; ++j) _mm512_storeu_ps(C + n_start + 16 * j, acc[j]);
    }
  }
  for (int n0 = n_start; n0 < N; n0 += 64) {
    const int rem = N - n0;
    const __mmask16 m0 = mask16(rem), m1 = mask16(rem - 16), m2 = mask16(rem - 32), m3 = mask16(rem - 48);
    const uint32_t* b = B + n0;
    float* c = C + n0;
    const float* bn = bias ? bias + n0 : nullptr;
    int m = 0;
    for (; m + 6 <= M; m += 6)
      tile<6>(K2, A + static_cast<int64_t>(m) * lda, lda, b, N, c + static_cast<int64_t>(m) * ldc, ldc, m0, m1, m2, m3, accumulate, bn);
    const uint32_t* a = A + static_cast<int64_t>(m) * lda;
    float* cm = c + static_cast<int64_t>(m) * ldc;
    switch (M - m) {
      case 5: tile<5>(K2, a, lda, b, N, cm, ldc, m0, m1, m2, m3, accumulate, bn); break;
      case 4: tile<4>(K2, a, lda, b, N, cm, ldc, m0, m1, m2, m3, accumulate, bn); break;
      case 3: tile<3>(K2, a, lda, b, N, cm, ldc, m0, m1, m2, m3, accumulate, bn); break;
      case 2: tile<2>(K2, a, lda, b, N, cm, ldc, m0, m1, m2, m3, accumulate, bn); break;
      case 1: tile<1>(K2, a, lda, b, N, cm, ldc, m0, m1, m2, m3, accumulate, bn); break;
      default: break;
    }
  }
}

// Consecutive floats become consecutive bf16, which is exactly the pair layout.
void convert_bf16(int rows, int K, const float* src, int lds, uint32_t* dst) {
  const int K2 = (K + 1) / 2;
  for (int r = 0; r < rows; ++r) {
    const float* s = src + static_cast<int64_t>(r) * lds;
    uint16_t* d = reinterpret_cast<uint16_t*>(dst + static_cast<int64_t>(r) * K2);
    int k = 0;
    for (; k + 32 <= K; k += 32) {
      const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(s + k + 16), _mm512_loadu_ps(s + k));
      _mm512_storeu_si512(d + k, (__m512i)v);
    }
    for (; k < K; ++k) d[k] = to_bf16(s[k]);
    if (K % 2) d[K] = 0;
  }
}

// The bf16 product of the fused step: a pair of k per vdpbf16ps, the cell in FastMath, and h also written as
// bf16 pairs for the next step's product (16 consecutive bf16 are exactly 8 pairs). Out: the first row's pairs,
// rows hp / 2 apart.
struct Bf16Product {
  using E = uint32_t;
  struct Out {
    uint32_t* pairs;
    int ld;
  };
  static __m512bh load(const uint32_t* w) { return (__m512bh)_mm512_loadu_si512(w); }
  static __m512bh bcast(uint32_t a) { return (__m512bh)_mm512_set1_epi32(static_cast<int>(a)); }
  static __m512 madd(__m512 acc, __m512bh a, __m512bh w) { return _mm512_dpbf16_ps(acc, a, w); }
  static Out rows(Out o, int m) { return {o.pairs + static_cast<int64_t>(m) * o.ld, o.ld}; }
  static void cell(__m512 zi, __m512 zf, __m512 zg, __m512 zo, const float* x, float* c, float* h, Out o, int r, int u0) {
    const __m512 hn = vecmath::cell_block<V512, vecmath::FastMath<V512>>(zi, zf, zg, zo, x, c, h);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.pairs + static_cast<int64_t>(r) * o.ld + u0 / 2), (__m256i)_mm512_cvtneps_pbh(hn));
  }
};

void lstm_step_bf16(int Mrows, int H, const uint32_t* h_prev, int hp, const uint32_t* wh, int gp, const float* const* gx, float* c,
                    float* h_next, uint32_t* h_next_bf) {
  Step512<Bf16Product>::run(Mrows, (H + 1) / 2, h_prev, hp / 2, wh, gp, gx, c, h_next, hp, {h_next_bf, hp / 2});
}

}  // namespace

const Bf16Kernels kernels::avx512_bf16 = {gemm_bf16, convert_bf16, lstm_step_bf16, 16};

}  // namespace dupn
