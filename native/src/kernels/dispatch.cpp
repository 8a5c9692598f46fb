// Run-time choice of the kernel table by CPUID (and the OS's saved-state support, via
// __builtin_cpu_supports), overridable for tests.
#include <string>

#include "dupn/kernels.h"

namespace dupn {
namespace {

#if defined(__x86_64__) || defined(_M_X64)
bool has_avx2() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
bool has_avx512() {
  return has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}
#endif

#if defined(__x86_64__) || defined(_M_X64)
bool has_avx512_bf16() { return has_avx512() && __builtin_cpu_supports("avx512bf16"); }
#endif

}  // namespace

const Bf16Kernels* bf16_kernels() {
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  if (has_avx512_bf16()) return &kernels::avx512_bf16;
#endif
  return nullptr;
}

AlignedPairs pack_bf16_pairs(const float* wt, int K, int N) {
  const int K2 = (K + 1) / 2;
  AlignedPairs out(static_cast<size_t>(K2) * N);
  for (int j = 0; j < K2; ++j)
    for (int n = 0; n < N; ++n) {
      const uint32_t lo = to_bf16(wt[static_cast<size_t>(2 * j) * N + n]);
      const uint32_t hi = 2 * j + 1 < K ? to_bf16(wt[static_cast<size_t>(2 * j + 1) * N + n]) : 0;
      out[static_cast<size_t>(j) * N + n] = lo | (hi << 16);
    }
  return out;
}

std::string supported_isas() {
  std::string out = "baseline";
#if defined(__x86_64__) || defined(_M_X64)
  if (has_avx2()) out += ",avx2";
  if (has_avx512()) out += ",avx512";
#endif
  return out;
}

const KernelTable* select_kernels(const std::string& forced, std::string* error) {
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  if (forced.empty()) {
    if (has_avx512()) return &kernels::avx512;
    if (has_avx2()) return &kernels::avx2;
    return &kernels::baseline;
  }
  if (forced == "avx512") {
    if (has_avx512()) return &kernels::avx512;
  } else if (forced == "avx2") {
    if (has_avx2()) return &kernels::avx2;
  }
#else
  if (forced.empty()) return &kernels::baseline;
#endif
  if (forced == "baseline") return &kernels::baseline;
  if (error) *error = "instruction set \"" + forced + "\" is unknown or not supported by this CPU (supported: " + supported_isas() + ")";
  return nullptr;
}

}  // namespace dupn
