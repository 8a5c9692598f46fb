// The AVX-512 fused recurrent step (KernelTable::lstm_step's contract), written once for the fp32 path
// (avx512.cpp) and the bf16 path (avx512_bf16.cpp). P, the product, says what one k of the recurrent product
// is: P::E, the element type of h_prev and W_h (a float, or a bf16 pair holding two k); P::load and
// P::bcast, a W_h vector and one h_prev element in a register; P::madd, the multiply-add into an fp32
// accumulator; and P::cell, the cell update of one row's block of 16 units (which may write more than h).
// Included only by translation units built with AVX-512 flags.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace dupn {
namespace {

template <class P>
struct Step512 {
  using E = typename P::E;

  // MR rows × one block of 16 units (64 interleaved columns i | f | g | o): the recurrent product in 4 × MR
  // accumulators (6 × 4 + 4 weights + 1 broadcast fit the 32 zmm), then the cell update on them.
  template <int MR>
  static void tile(int K, const E* A, int lda, const E* W, int gp, int n0, const float* const* gx, float* c, float* h, int hp,
                   typename P::Out out, int u0) {
    __m512 zi[MR], zf[MR], zg[MR], zo[MR];
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) zi[r] = zf[r] = zg[r] = zo[r] = _mm512_setzero_ps();
    for (int k = 0; k < K; ++k) {
      const E* w = W + static_cast<int64_t>(k) * gp + n0;
      const auto wi = P::load(w), wf = P::load(w + 16), wg = P::load(w + 32), wo = P::load(w + 48);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        const auto av = P::bcast(A[static_cast<int64_t>(r) * lda + k]);
        zi[r] = P::madd(zi[r], av, wi);
        zf[r] = P::madd(zf[r], av, wf);
        zg[r] = P::madd(zg[r], av, wg);
        zo[r] = P::madd(zo[r], av, wo);
      }
    }
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
      // One row (B = 1): four blocks at once in 16 accumulators, each row of W_h read front to back; per
      // element the same sequence as the tiles, so a row's result does not depend on the batch around it.
      for (; start + 256 <= gp; start += 256) {
        __m512 acc[16];
#pragma GCC unroll 16
        for (int j = 0; j < 16; ++j) acc[j] = _mm512_setzero_ps();
        for (int k = 0; k < K; ++k) {
          const auto av = P::bcast(h_prev[k]);
          const E* w = wh + static_cast<int64_t>(k) * gp + start;
#pragma GCC unroll 16
          for (int j = 0; j < 16; ++j) acc[j] = P::madd(acc[j], av, P::load(w + 16 * j));
        }
        for (int q = 0; q < 4; ++q) {
          const int u0 = start / 4 + 16 * q;
          P::cell(acc[4 * q], acc[4 * q + 1], acc[4 * q + 2], acc[4 * q + 3], gx[0] + start + 64 * q, c + u0, h_next + u0, out, 0, u0);
        }
      }
    }
    for (int n0 = start, u0 = start / 4; n0 < gp; n0 += 64, u0 += 16) {
      int m = 0;
      for (; m + 6 <= Mrows; m += 6) block<6>(K, h_prev, lda, wh, gp, n0, gx, c, h_next, hp, out, u0, m);
      switch (Mrows - m) {
        case 5: block<5>(K, h_prev, lda, wh, gp, n0, gx, c, h_next, hp, out, u0, m); break;
        case 4: block<4>(K, h_prev, lda, wh, gp, n0, gx, c, h_next, hp, out, u0, m); break;
        case 3: block<3>(K, h_prev, lda, wh, gp, n0, gx, c, h_next, hp, out, u0, m); break;
        case 2: block<2>(K, h_prev, lda, wh, gp, n0, gx, c, h_next, hp, out, u0, m); break;
        case 1: block<1>(K, h_prev, lda, wh, gp, n0, gx, c, h_next, hp, out, u0, m); break;
        default: break;
      }
    }
  }

  // The tile of rows m .. m + MR - 1.
  template <int MR>
  static void block(int K, const E* h_prev, int lda, const E* wh, int gp, int n0, const float* const* gx, float* c, float* h_next,
                    int hp, typename P::Out out, int u0, int m) {
    const int64_t off = static_cast<int64_t>(m) * hp;
    tile<MR>(K, h_prev + static_cast<int64_t>(m) * lda, lda, wh, gp, n0, gx + m, c + off, h_next + off, hp, P::rows(out, m), u0);
  }
};

}  // namespace
}  // namespace dupn
