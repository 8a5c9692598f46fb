// AVX2+FMA kernels. The GEMM keeps 6 rows × 16 columns of C in 12 ymm accumulators while K streams by (the
// last 1–5 rows: a tile of that many); column tails use masked loads so every element sees the same FMA
// sequence as in the full tiles. The fused LSTM step works on the gate-interleaved W_h in blocks of 8 units,
// stored block-major (wh_block_major): a tile's 128 × 32-float strip is contiguous.
#include <immintrin.h>

#include "dupn/kernels.h"
#include "vecmath.h"

namespace dupn {
namespace {

inline __m256i mask_for(int remaining) {
  const int n = remaining < 0 ? 0 : (remaining > 8 ? 8 : remaining);
  alignas(32) static const int32_t table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(table + 8 - n));
}

// MR rows × 16 columns of C in MR × 2 ymm accumulators (6 × 2 + 2 + 1 = 15 of the 16 ymm). kMasked
// handles the last, partial column block; accumulators are named per column vector so they stay in
// registers.
template <int MR, bool kMasked>
inline void tile(int K, const float* A, int lda, const float* B, int N, float* C, int ldc, const float* init, int ldi,
                 __m256i k0, __m256i k1) {
  auto ld = [&](const float* p, __m256i m) { return kMasked ? _mm256_maskload_ps(p, m) : _mm256_loadu_ps(p); };
  auto st = [&](float* p, __m256i m, __m256 v) {
    if (kMasked) _mm256_maskstore_ps(p, m, v);
    else _mm256_storeu_ps(p, v);
  };
  __m256 c0[MR], c1[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    const float* from = init ? init + static_cast<int64_t>(r) * ldi : nullptr;
    c0[r] = from ? ld(from, k0) : _mm256_setzero_ps();
    c1[r] = from ? ld(from + 8, k1) : _mm256_setzero_ps();
  }
  for (int k = 0; k < K; ++k) {
    const float* b = B + static_cast<int64_t>(k) * N;
    const __m256 b0 = ld(b, k0), b1 = ld(b + 8, k1);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m256 av = _mm256_broadcast_ss(A + static_cast<int64_t>(r) * lda + k);
      c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
      c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    float* c = C + static_cast<int64_t>(r) * ldc;
    st(c, k0, c0[r]);
    st(c + 8, k1, c1[r]);
  }
}

template <bool kMasked>
void column_block(int M, int N, int K, const float* A, int lda, const float* B, float* C, int ldc, const float* init, int ldi,
                  int n0) {
  const __m256i k0 = mask_for(N - n0), k1 = mask_for(N - n0 - 8);
  const float* b = B + n0;
  float* c = C + n0;
  auto from = [&](int m) { return init ? init + static_cast<int64_t>(m) * ldi + n0 : nullptr; };
  int m = 0;
  for (; m + 6 <= M; m += 6)
    tile<6, kMasked>(K, A + static_cast<int64_t>(m) * lda, lda, b, N, c + static_cast<int64_t>(m) * ldc, ldc, from(m), ldi, k0, k1);
  const float* a = A + static_cast<int64_t>(m) * lda;
  c += static_cast<int64_t>(m) * ldc;
  init = from(m);
  switch (M - m) {
    case 5: tile<5, kMasked>(K, a, lda, b, N, c, ldc, init, ldi, k0, k1); break;
    case 4: tile<4, kMasked>(K, a, lda, b, N, c, ldc, init, ldi, k0, k1); break;
    case 3: tile<3, kMasked>(K, a, lda, b, N, c, ldc, init, ldi, k0, k1); break;
    case 2: tile<2, kMasked>(K, a, lda, b, N, c, ldc, init, ldi, k0, k1); break;
    case 1: tile<1, kMasked>(K, a, lda, b, N, c, ldc, init, ldi, k0, k1); break;
    default: break;
  }
}

void sgemm_avx2(int M, int N, int K, const float* A, int lda, const float* B, float* C, int ldc,
                bool accumulate, const float* bias) {
  // Row r's sums start from init + r·ldi: C itself, or the bias row (ldi = 0); zero when init is null.
  const float* init = bias ? bias : accumulate ? C : nullptr;
  const int ldi = bias ? 0 : ldc;
  int n0 = 0;
  for (; n0 + 16 <= N; n0 += 16) column_block<false>(M, N, K, A, lda, B, C, ldc, init, ldi, n0);
  if (n0 < N) column_block<true>(M, N, K, A, lda, B, C, ldc, init, ldi, n0);
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

struct V256 {
  using T = __m256;
  using Mask = __m256;
  static constexpr int kWidth = 8;
  static T set1(float x) { return _mm256_set1_ps(x); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
  static T sub(T a, T b) { return _mm256_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static T fma(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }    // a·b + c
  static T fnma(T a, T b, T c) { return _mm256_fnmadd_ps(a, b, c); }  // c − a·b
  static T rcp(T a) { return _mm256_rcp_ps(a); }
  static T min(T a, T b) { return _mm256_min_ps(a, b); }
  static T max(T a, T b) { return _mm256_max_ps(a, b); }
  static T round(T x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // y · 2^n for integral n in [-126, 127] (exp clamps its argument so n stays there).
  static T scale2(T y, T n) {
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(bits));
  }
  static T abs(T x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x); }
  static T copysign(T mag, T sign) {
    const T m = _mm256_set1_ps(-0.0f);
    return _mm256_or_ps(_mm256_andnot_ps(m, mag), _mm256_and_ps(m, sign));
  }
  static Mask less(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static T select(Mask m, T a, T b) { return _mm256_blendv_ps(b, a, m); }
  static T load(const float* p, int n) { return n == kWidth ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask_for(n)); }
  static void store(float* p, T v, int n) {
    if (n == kWidth) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, mask_for(n), v);
  }
  static float sum(T v) {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, v);
    float s = 0.0f;
    for (float x : lanes) s += x;
    return s;
  }
};

void lstm_cell_avx2(int H, const float* z, const float* gx, float* c, float* h) { vecmath::lstm_cell<V256>(H, z, gx, c, h); }
float tanh_dot_avx2(int A, const float* s, const float* b, const float* v) { return vecmath::tanh_dot<V256>(A, s, b, v); }
void lstm_cell_train_avx2(int H, float* pre, const float* c_prev, float* c, float* tc, float* h) {
  vecmath::lstm_cell_train<V256>(H, pre, c_prev, c, tc, h);
}
void tanh_map_avx2(int n, const float* x, float* y) { vecmath::tanh_map<V256>(n, x, y); }
void relu_dot_avx2(int M, int K, const float* x, int ldx, const float* w, float bias, float* out) {
  vecmath::relu_dot<V256>(M, K, x, ldx, w, bias, out);
}


// MR rows × one block of 8 units (32 interleaved columns i | f | g | o): the recurrent product in 4 × MR
// accumulators, then the cell update on them. With MR = 3 that is 12 accumulators, 3 broadcasts and one
// weight vector at a time: the 16 ymm registers. Per element exactly GEMM-then-lstm_cell: the same FMA
// sequence from zero, + gx, and the same vector math.
template <int MR>
inline void step_tile(int H, const float* A, int lda, const float* W, int n0, const float* const* gx, float* c,
                      float* h, int hp, int u0) {
  __m256 zi[MR], zf[MR], zg[MR], zo[MR];
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r) zi[r] = zf[r] = zg[r] = zo[r] = _mm256_setzero_ps();
  const float* strip = W + static_cast<int64_t>(n0) * H;  // block n0 / 32's H × 32 floats
  for (int k = 0; k < H; ++k) {
    const float* w = strip + static_cast<int64_t>(k) * 32;
    __m256 av[MR];
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) av[r] = _mm256_broadcast_ss(A + static_cast<int64_t>(r) * lda + k);
    __m256 wv = _mm256_loadu_ps(w);
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) zi[r] = _mm256_fmadd_ps(av[r], wv, zi[r]);
    wv = _mm256_loadu_ps(w + 8);
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) zf[r] = _mm256_fmadd_ps(av[r], wv, zf[r]);
    wv = _mm256_loadu_ps(w + 16);
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) zg[r] = _mm256_fmadd_ps(av[r], wv, zg[r]);
    wv = _mm256_loadu_ps(w + 24);
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) zo[r] = _mm256_fmadd_ps(av[r], wv, zo[r]);
  }
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r)
    vecmath::cell_block<V256>(zi[r], zf[r], zg[r], zo[r], gx[r] + n0, c + static_cast<int64_t>(r) * hp + u0, h + static_cast<int64_t>(r) * hp + u0);
}

void lstm_step_avx2(int Mrows, int H, const float* h_prev, int hp, const float* wh, int gp, const float* const* gx, float* c,
                    float* h_next) {
  int start = 0;
  if (Mrows == 1) {
    // One row (B = 1): three blocks at once in 12 accumulators.
    for (; start + 96 <= gp; start += 96) {
      __m256 acc[12];
#pragma GCC unroll 12
      for (int j = 0; j < 12; ++j) acc[j] = _mm256_setzero_ps();
      // The three blocks' strips, each read front to back.
      const float* w0 = wh + static_cast<int64_t>(start) * H;
      for (int k = 0; k < H; ++k) {
        const __m256 av = _mm256_broadcast_ss(h_prev + k);
#pragma GCC unroll 12
        for (int j = 0; j < 12; ++j) acc[j] = _mm256_fmadd_ps(av, _mm256_loadu_ps(w0 + static_cast<int64_t>(j / 4) * H * 32 + k * 32 + 8 * (j % 4)), acc[j]);
      }
      for (int q = 0; q < 3; ++q) {
        const int u0 = start / 4 + 8 * q;
        vecmath::cell_block<V256>(acc[4 * q], acc[4 * q + 1], acc[4 * q + 2], acc[4 * q + 3], gx[0] + start + 32 * q, c + u0, h_next + u0);
      }
    }
  }
  for (int n0 = start, u0 = start / 4; n0 < gp; n0 += 32, u0 += 8) {
    int m = 0;
    for (; m + 3 <= Mrows; m += 3) {
      const int64_t off = static_cast<int64_t>(m) * hp;
      step_tile<3>(H, h_prev + off, hp, wh, n0, gx + m, c + off, h_next + off, hp, u0);
    }
    const int64_t off = static_cast<int64_t>(m) * hp;
    switch (Mrows - m) {
      case 2: step_tile<2>(H, h_prev + off, hp, wh, n0, gx + m, c + off, h_next + off, hp, u0); break;
      case 1: step_tile<1>(H, h_prev + off, hp, wh, n0, gx + m, c + off, h_next + off, hp, u0); break;
      default: break;
    }
  }
}

}  // namespace

const KernelTable kernels::avx2 = {"avx2", sgemm_avx2, fma_peak_avx2, lstm_cell_avx2, tanh_dot_avx2, lstm_step_avx2, 8,
                                     lstm_cell_train_avx2, tanh_map_avx2, relu_dot_avx2, true};

}  // namespace dupn
