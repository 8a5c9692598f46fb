// Instruction-set kernels behind one table chosen at run time (CPUID), so a shipped binary never needs
// -march=native and tests can force each path in turn (DUPN_ISA).
#pragma once
#include <cstdint>
#include <string>

namespace dupn {

// C[m, :] (+)= A[m, :] · B for m < M, with B stored K × N row-major (weights packed transposed at load
// time so the inner loop runs over contiguous outputs). Every output row is computed with the same
// operation sequence whatever M is, so a user's result does not depend on the batch around it.
using SgemmFn = void (*)(int M, int N, int K, const float* A, int lda, const float* B, float* C, int ldc,
                         bool accumulate);

// Runs `iterations` rounds of independent multiply-adds on this path's widest registers and returns
// the FLOPs done (a multiply-add counts 2): the benchmarks' measured peak.
using FmaPeakFn = double (*)(int64_t iterations);

// One LSTM step for H units: z (recurrent part) + gx (input part and bias), gate blocks i, f, g, o of
// H each; c and h updated in place. Fused so the gates never leave registers.
using LstmCellFn = void (*)(int H, const float* z, const float* gx, float* c, float* h);

// Σ_a v_a · tanh(s_a + b_a): one step's attention score.
using TanhDotFn = float (*)(int A, const float* s, const float* b, const float* v);

struct KernelTable {
  const char* isa;
  SgemmFn sgemm;
  FmaPeakFn fma_peak;
  LstmCellFn lstm_cell;
  TanhDotFn tanh_dot;
};

namespace kernels {
extern const KernelTable portable;
#if defined(__x86_64__) || defined(_M_X64)
extern const KernelTable avx2;
extern const KernelTable avx512;
#endif
}  // namespace kernels

// The best table this CPU supports, or the one DUPN_ISA names (an error string if it names an
// unknown or unsupported one).
const KernelTable* select_kernels(const std::string& forced, std::string* error);

// Names of the instruction-set paths this CPU can run, best last.
std::string supported_isas();

}  // namespace dupn
