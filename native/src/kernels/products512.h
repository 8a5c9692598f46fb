// The AVX-512 products, written once for the fp32 path (avx512.cpp) and the bf16 path (avx512_bf16.cpp):
// the GEMM (SgemmFn's contract) and the fused recurrent step (KernelTable::lstm_step's). P, the product,
// says what one k is: P::E, the element type of A and B (a float, or a bf16 pair holding two k); P::load and
// P::load_masked (zero where the mask is clear), a vector of B; P::bcast, one element of A in every lane;
// P::madd, the multiply-add into an fp32 accumulator; and, for the step, P::cell, the cell update of one row's
// block of 16 units (which may write more than h). Per element both products run the same sequence from the
// same start whatever the tile, so a row's result never depends on the rows around it.
// Included only by translation units built with AVX-512 flags.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <type_traits>

#include "avx512_mask.h"

namespace dupn {
namespace {

// f(std::integral_constant<int, MR>(), m) for the row tiles covering [0, M): 6 rows each, the last M % 6.
template <class F>
inline void row_tiles(int M, F&& f) {
  int m = 0;
  for (; m + 6 <= M; m += 6) f(std::integral_constant<int, 6>(), m);
  switch (M - m) {
    case 5: f(std::integral_constant<int, 5>(), m); break;
    case 4: f(std::integral_constant<int, 4>(), m); break;
    case 3: f(std::integral_constant<int, 3>(), m); break;
    case 2: f(std::integral_constant<int, 2>(), m); break;
    case 1: f(std::integral_constant<int, 1>(), m); break;
    default: break;
  }
}

template <class P>
struct Gemm512 {
  using E = typename P::E;

  // c_v[r] += Σ_k A[r, k] · B[k, 16v .. 16v + 15] for MR rows and NV vectors, B's rows ldb elements apart
  // (kMasked: lanes outside m_v load as zero). Inlined into each tile so the accumulators stay in registers.
  template <int MR, int NV, bool kMasked>
  __attribute__((always_inline)) static inline void accumulate(int K, const E* A, int lda, const E* B, int ldb, __m512 (&c0)[MR],
                                                               __m512 (&c1)[MR], __m512 (&c2)[MR], __m512 (&c3)[MR], __mmask16 m0,
                                                               __mmask16 m1, __mmask16 m2, __mmask16 m3) {
    auto ld = [&](const E* p, __mmask16 m) { return kMasked ? P::load_masked(m, p) : P::load(p); };
    for (int k = 0; k < K; ++k) {
      const E* b = B + static_cast<int64_t>(k) * ldb;
      const auto b0 = ld(b, m0);
      std::remove_const_t<decltype(b0)> b1, b2, b3;
      if constexpr (NV > 1) b1 = ld(b + 16, m1);
      if constexpr (NV > 2) b2 = ld(b + 32, m2);
      if constexpr (NV > 3) b3 = ld(b + 48, m3);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        const auto av = P::bcast(A[static_cast<int64_t>(r) * lda + k]);
        c0[r] = P::madd(c0[r], av, b0);
        if constexpr (NV > 1) c1[r] = P::madd(c1[r], av, b1);
        if constexpr (NV > 2) c2[r] = P::madd(c2[r], av, b2);
        if constexpr (NV > 3) c3[r] = P::madd(c3[r], av, b3);
      }
    }
  }

  // acc[j] += Σ_k a[k] · B[k, 16j .. 16j + 15] for j < 16: one row against 256 columns in 16 independent
  // accumulators, each row of B (ldb elements apart) read front to back: the B = 1 paths.
  __attribute__((always_inline)) static inline void row256(int K, const E* a, const E* B, int ldb, __m512 (&acc)[16]) {
    for (int k = 0; k < K; ++k) {
      const auto av = P::bcast(a[k]);
      const E* b = B + static_cast<int64_t>(k) * ldb;
#pragma GCC unroll 16
      for (int j = 0; j < 16; ++j) acc[j] = P::madd(acc[j], av, P::load(b + 16 * j));
    }
  }

  // MR rows × NV·16 columns of C in MR × NV zmm accumulators (NV = 4 but in a last, narrower column block:
  // a tail of 16 columns computes one vector, not four with three masked off). kMasked handles that last
  // block; full blocks load unmasked. Accumulators are named per column vector so the compiler keeps them all
  // in registers: 6 × 4 + 4 + 1 = 29 of the 32 zmm. Row r's sums start from init + r·ldi (C itself, or a bias
  // row with ldi = 0), or from zero when init is null.
  template <int MR, int NV, bool kMasked>
  static void tile(int K, const E* A, int lda, const E* B, int N, float* C, int ldc, const float* init, int ldi, __mmask16 m0,
                   __mmask16 m1, __mmask16 m2, __mmask16 m3) {
    auto ld = [&](const float* p, __mmask16 m) { return kMasked ? _mm512_maskz_loadu_ps(m, p) : _mm512_loadu_ps(p); };
    auto st = [&](float* p, __mmask16 m, __m512 v) {
      if (kMasked) _mm512_mask_storeu_ps(p, m, v);
      else _mm512_storeu_ps(p, v);
    };
    __m512 c0[MR], c1[MR], c2[MR], c3[MR];
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const float* from = init ? init + static_cast<int64_t>(r) * ldi : nullptr;
      c0[r] = from ? ld(from, m0) : _mm512_setzero_ps();
      if constexpr (NV > 1) c1[r] = from ? ld(from + 16, m1) : _mm512_setzero_ps();
      if constexpr (NV > 2) c2[r] = from ? ld(from + 32, m2) : _mm512_setzero_ps();
      if constexpr (NV > 3) c3[r] = from ? ld(from + 48, m3) : _mm512_setzero_ps();
    }
    accumulate<MR, NV, kMasked>(K, A, lda, B, N, c0, c1, c2, c3, m0, m1, m2, m3);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      float* c = C + static_cast<int64_t>(r) * ldc;
      st(c, m0, c0[r]);
      if constexpr (NV > 1) st(c + 16, m1, c1[r]);
      if constexpr (NV > 2) st(c + 32, m2, c2[r]);
      if constexpr (NV > 3) st(c + 48, m3, c3[r]);
    }
  }

  // Columns [n0, n0 + 16·NV) of every row; one 64-column panel of B (K × 64) stays in L1 while A streams past.
  template <int NV, bool kMasked>
  static void column_block(int M, int N, int K, const E* A, int lda, const E* B, float* C, int ldc, const float* init, int ldi,
                           int n0) {
    const int rem = N - n0;
    const __mmask16 m0 = mask16(rem), m1 = mask16(rem - 16), m2 = mask16(rem - 32), m3 = mask16(rem - 48);
    row_tiles(M, [&](auto mr, int m) {
      tile<decltype(mr)::value, NV, kMasked>(K, A + static_cast<int64_t>(m) * lda, lda, B + n0, N, C + static_cast<int64_t>(m) * ldc + n0,
                                             ldc, init ? init + static_cast<int64_t>(m) * ldi + n0 : nullptr, ldi, m0, m1, m2, m3);
    });
  }

  // The last, partial column block [n0, N): as many vectors as it has columns.
  static void tail_block(int M, int N, int K, const E* A, int lda, const E* B, float* C, int ldc, const float* init, int ldi, int n0) {
    switch ((N - n0 + 15) / 16) {
      case 1: return column_block<1, true>(M, N, K, A, lda, B, C, ldc, init, ldi, n0);
      case 2: return column_block<2, true>(M, N, K, A, lda, B, C, ldc, init, ldi, n0);
      case 3: return column_block<3, true>(M, N, K, A, lda, B, C, ldc, init, ldi, n0);
      default: return column_block<4, true>(M, N, K, A, lda, B, C, ldc, init, ldi, n0);
    }
  }

  // SgemmFn's contract; K counts elements of E (pairs of k for bf16).
  static void run(int M, int N, int K, const E* A, int lda, const E* B, float* C, int ldc, bool accumulate, const float* bias) {
    const float* init = bias ? bias : accumulate ? C : nullptr;
    const int ldi = bias ? 0 : ldc;
    int n0 = 0;
    if (M == 1) {
      // One row (the recurrence at B = 1): 256 columns at a time.
      for (; n0 + 256 <= N; n0 += 256) {
        __m512 acc[16];
#pragma GCC unroll 16
        for (int j = 0; j < 16; ++j) acc[j] = init ? _mm512_loadu_ps(init + n0 + 16 * j) : _mm512_setzero_ps();
        row256(K, A, B + n0, N, acc);
#pragma GCC unroll 16
        for (int j = 0; j < 16; ++j) _mm512_storeu_ps(C + n0 + 16 * j, acc[j]);
      }
    }
    for (; n0 + 64 <= N; n0 += 64) column_block<4, false>(M, N, K, A, lda, B, C, ldc, init, ldi, n0);
    if (n0 < N) tail_block(M, N, K, A, lda, B, C, ldc, init, ldi, n0);
  }
};

template <class P>
struct Step512 {
  using E = typename P::E;

  // MR rows × one block of 16 units (64 interleaved columns i | f | g | o): the recurrent product in 4 × MR
  // accumulators (the GEMM's full tile, from zero), then the cell update on them.
  template <int MR>
  static void tile(int K, const E* A, int lda, const E* W, int gp, int n0, const float* const* gx, float* c, float* h, int hp,
                   typename P::Out out, int u0) {
    __m512 zi[MR], zf[MR], zg[MR], zo[MR];
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) zi[r] = zf[r] = zg[r] = zo[r] = _mm512_setzero_ps();
    Gemm512<P>::template accumulate<MR, 4, false>(K, A, lda, W + n0, gp, zi, zf, zg, zo, 0, 0, 0, 0);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r)
      P::cell(zi[r], zf[r], zg[r], zo[r], gx[r] + n0, c + static_cast<int64_t>(r) * hp + u0, h + static_cast<int64_t>(r) * hp + u0, out,
              r, u0);
  }

  // Rows of h_prev are lda elements apart, rows of c and h_next hp floats; K elements of each row are read.
  static void run(int Mrows, int K, const E* h_prev, int lda, const E* wh, int gp, const float* const* gx, float* c, float* h_next,
                  int hp, typename P::Out out) {
    int start = 0;
    if (Mrows == 1) {
      // One row (B = 1): four blocks at once, the GEMM's one-row panel.
      for (; start + 256 <= gp; start += 256) {
        __m512 acc[16];
#pragma GCC unroll 16
        for (int j = 0; j < 16; ++j) acc[j] = _mm512_setzero_ps();
        Gemm512<P>::row256(K, h_prev, wh + start, gp, acc);
        for (int q = 0; q < 4; ++q) {
          const int u0 = start / 4 + 16 * q;
          P::cell(acc[4 * q], acc[4 * q + 1], acc[4 * q + 2], acc[4 * q + 3], gx[0] + start + 64 * q, c + u0, h_next + u0, out, 0, u0);
        }
      }
    }
    for (int n0 = start, u0 = start / 4; n0 < gp; n0 += 64, u0 += 16)
      row_tiles(Mrows, [&](auto mr, int m) {
        const int64_t off = static_cast<int64_t>(m) * hp;
        tile<decltype(mr)::value>(K, h_prev + static_cast<int64_t>(m) * lda, lda, wh, gp, n0, gx + m, c + off, h_next + off, hp,
                                  P::rows(out, m), u0);
      });
  }
};

}  // namespace
}  // namespace dupn
