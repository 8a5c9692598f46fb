// Lane mask for the first `remaining` of 16 floats (all, some or none): the column tails of the AVX-512
// kernels. Included only by translation units built with AVX-512 flags.
#pragma once
#include <immintrin.h>

namespace dupn {

inline __mmask16 mask16(int remaining) {
  if (remaining >= 16) return 0xFFFF;
  if (remaining <= 0) return 0;
  return static_cast<__mmask16>((1u << remaining) - 1u);
}

}  // namespace dupn
