// The AVX-512 register traits of vecmath.h, shared by the fp32 (avx512.cpp) and bf16 (avx512_bf16.cpp)
// kernels. Included only by translation units built with AVX-512 flags.
#pragma once
#include <immintrin.h>

#include "avx512_mask.h"
#include "vecmath.h"

namespace dupn {
// Internal linkage: each AVX-512 translation unit keeps its own copy, so the linker never picks one built
// with another unit's flags.
namespace {

struct V512 {
  using T = __m512;
  using Mask = __mmask16;
  static constexpr int kWidth = 16;
  static T set1(float x) { return _mm512_set1_ps(x); }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
  static T sub(T a, T b) { return _mm512_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static T fma(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }    // a·b + c
  static T fnma(T a, T b, T c) { return _mm512_fnmadd_ps(a, b, c); }  // c − a·b
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

}  // namespace
}  // namespace dupn
