// AVX-512-BF16 kernels for precision "bf16": products512.h's GEMM and fused step on bf16 pairs (Bf16Product):
// each vdpbf16ps multiplies two k at once (32 products per instruction), accumulating in fp32.
#include <immintrin.h>

#include "dupn/kernels.h"
#include "products512.h"
#include "v512.h"

namespace dupn {
namespace {

// The bf16 product: a pair of k per vdpbf16ps. In the fused step the cell runs in FastMath, and h is also
// written as bf16 pairs for the next step's product (16 consecutive bf16 are exactly 8 pairs). Out: the first
// row's pairs, rows hp / 2 apart.
struct Bf16Product {
  using E = uint32_t;
  struct Out {
    uint32_t* pairs;
    int ld;
  };
  static __m512bh load(const uint32_t* w) { return (__m512bh)_mm512_loadu_si512(w); }
  static __m512bh load_masked(__mmask16 m, const uint32_t* w) { return (__m512bh)_mm512_maskz_loadu_epi32(m, w); }
  static __m512bh bcast(uint32_t a) { return (__m512bh)_mm512_set1_epi32(static_cast<int>(a)); }
  static __m512 madd(__m512 acc, __m512bh a, __m512bh w) { return _mm512_dpbf16_ps(acc, a, w); }
  static Out rows(Out o, int m) { return {o.pairs + static_cast<int64_t>(m) * o.ld, o.ld}; }
  static void cell(__m512 zi, __m512 zf, __m512 zg, __m512 zo, const float* x, float* c, float* h, Out o, int r, int u0) {
    const __m512 hn = vecmath::cell_block<V512, vecmath::FastMath<V512>>(zi, zf, zg, zo, x, c, h);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.pairs + static_cast<int64_t>(r) * o.ld + u0 / 2), (__m256i)_mm512_cvtneps_pbh(hn));
  }
};

void gemm_bf16(int M, int N, int K2, const uint32_t* A, int lda, const uint32_t* B, float* C, int ldc, bool accumulate,
               const float* bias) {
  Gemm512<Bf16Product>::run(M, N, K2, A, lda, B, C, ldc, accumulate, bias);
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

void lstm_step_bf16(int Mrows, int H, const uint32_t* h_prev, int hp, const uint32_t* wh, int gp, const float* const* gx, float* c,
                    float* h_next, uint32_t* h_next_bf) {
  Step512<Bf16Product>::run(Mrows, (H + 1) / 2, h_prev, hp / 2, wh, gp, gx, c, h_next, hp, {h_next_bf, hp / 2});
}

}  // namespace

const Bf16Kernels kernels::avx512_bf16 = {gemm_bf16, convert_bf16, lstm_step_bf16, 16};

}  // namespace dupn
