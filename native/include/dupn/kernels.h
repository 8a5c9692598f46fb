// Instruction-set kernels behind one table chosen at run time (CPUID), so a shipped binary never needs
// -march=native; a caller can force a path by name (select_kernels).
#pragma once
#include <cstdint>
#include <string>

#include "dupn/aligned.h"

namespace dupn {

// C[m, :] (+)= A[m, :] · B for m < M, with B stored K × N row-major (weights packed transposed at load
// time so the inner loop runs over contiguous outputs). Every output row is computed with the same
// operation sequence whatever M is, so a user's result does not depend on the batch around it. Each row's
// sums start from zero, from C's row (accumulate) or, when bias (N floats) is given, from bias: the same
// bits as filling C's rows with bias and accumulating, without writing and reading C an extra time.
using SgemmFn = void (*)(int M, int N, int K, const float* A, int lda, const float* B, float* C, int ldc,
                         bool accumulate, const float* bias);

// Runs `iterations` rounds of independent multiply-adds on this path's widest registers and returns
// the FLOPs done (a multiply-add counts 2): the benchmarks' measured peak.
using FmaPeakFn = double (*)(int64_t iterations);

// One LSTM step for H units: z (recurrent part) + gx (input part and bias), gate blocks i, f, g, o of
// H each; c and h updated in place. Fused so the gates never leave registers.
using LstmCellFn = void (*)(int H, const float* z, const float* gx, float* c, float* h);

// Σ_a v_a · tanh(s_a + b_a): one step's attention score.
using TanhDotFn = float (*)(int A, const float* s, const float* b, const float* v);

// The fused recurrent step: z = h_prev·W_h computed in registers and, still in registers, the gates,
// the cell update and h. W_h (H × gp) and the gx rows are in the interleaved gate layout: column block b
// holds gates i, f, g, o of units [gate_block·b, gate_block·(b+1)), gate_block columns each. W_h is stored
// row-major, or block-major where KernelTable::wh_block_major says so (block b's H rows of 4·gate_block
// floats contiguous, at wh + b·H·4·gate_block). c, h_prev and
// h_next have row stride hp (H rounded up to gate_block); gx[r] points at row r's gp input terms.
using LstmStepFn = void (*)(int M, int H, const float* h_prev, int hp, const float* wh, int gp, const float* const* gx,
                            float* c, float* h_next);

// Training forward of one LSTM step for one row: pre (4H pre-activations, gates i, f, g, o) is replaced
// by the activated gates; c = f·c_prev + i·g, tc = tanh(c), h = o·tc (c_prev may alias c).
using LstmCellTrainFn = void (*)(int H, float* pre, const float* c_prev, float* c, float* tc, float* h);

// y = tanh(x) over n values (may alias).
using TanhMapFn = void (*)(int n, const float* x, float* y);

// out[m] = bias + Σ_k max(x[m, k], 0) · w[k] for m < M (rows ldx apart): a head's last layer when it has
// one output, where a GEMM with N = 1 would use one lane of each vector. Each row's sum is independent of M.
using ReluDotFn = void (*)(int M, int K, const float* x, int ldx, const float* w, float bias, float* out);

struct KernelTable {
  const char* isa;
  SgemmFn sgemm;
  FmaPeakFn fma_peak;
  LstmCellFn lstm_cell;
  TanhDotFn tanh_dot;
  LstmStepFn lstm_step;  // null: the path has no fused step (GEMM + lstm_cell instead)
  int gate_block;        // units per column block of the interleaved layout (0 without lstm_step)
  LstmCellTrainFn lstm_cell_train;
  TanhMapFn tanh_map;
  ReluDotFn relu_dot;
  // W_h of lstm_step stored block-major (true) or row-major, H rows of gp floats (false); see LstmStepFn.
  bool wh_block_major;
};


// The bf16 path (precision "bf16"): C (+)= A·B with fp32 accumulation, A and B rounded to bfloat16.
// A is given as bf16 pairs — M rows of K2 = ceil(K/2) uint32, each holding (A[m,2j], A[m,2j+1]) — and B
// packed as K2 rows of N pairs (B[2j,n], B[2j+1,n]); the low half of each uint32 is the even k. accumulate
// and bias as SgemmFn.
using GemmBf16Fn = void (*)(int M, int N, int K2, const uint32_t* A, int lda, const uint32_t* B, float* C, int ldc,
                            bool accumulate, const float* bias);
// Rounds `rows` rows of K floats (row stride lds) to bf16 pairs, K2 per row (a zero pads odd K).
using ToBf16Fn = void (*)(int rows, int K, const float* src, int lds, uint32_t* dst);

// The fused recurrent step of the bf16 path: LstmStepFn's layout and contract, with the products in bf16 and
// the cell in vecmath's FastMath. h_prev comes as bf16 pairs (M rows of hp / 2, ceil(H / 2) of them read), W_h
// as ceil(H / 2) rows of gp pairs (pack_bf16_pairs of the row-major interleaved W_h); besides h_next (fp32, the
// layer's output) the step writes h_next_bf, the next step's h_prev in pairs.
using LstmStepBf16Fn = void (*)(int M, int H, const uint32_t* h_prev, int hp, const uint32_t* wh, int gp,
                                const float* const* gx, float* c, float* h_next, uint32_t* h_next_bf);

struct Bf16Kernels {
  GemmBf16Fn gemm;
  ToBf16Fn convert;
  LstmStepBf16Fn lstm_step;
  int gate_block;  // units per column block of lstm_step's interleaved layout (W_h row-major)
};

namespace kernels {
extern const KernelTable baseline;
#if defined(__x86_64__) || defined(_M_X64)
extern const KernelTable avx2;
extern const KernelTable avx512;
extern const Bf16Kernels avx512_bf16;
#endif
}  // namespace kernels

// The bf16 kernels when the CPU has AVX-512-BF16 (and AVX-512), else null.
const Bf16Kernels* bf16_kernels();

// Round-to-nearest-even fp32 → bf16 (for packing weights once).
inline uint16_t to_bf16(float x) {
  uint32_t u;
  __builtin_memcpy(&u, &x, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// W^T (K × N floats, row-major) → ceil(K/2) × N bf16 pairs, the B layout of Bf16Kernels::gemm.
AlignedPairs pack_bf16_pairs(const float* wt, int K, int N);

// The best table this CPU supports when `forced` is empty, else the one it names ("baseline", "avx2",
// "avx512"; null with *error set when it names an unknown or unsupported one). C++ reads no environment:
// the TypeScript side passes the `isa` option, or $DUPN_ISA when that is not given.
const KernelTable* select_kernels(const std::string& forced, std::string* error);

// Names of the instruction-set paths this CPU can run, best last.
std::string supported_isas();

}  // namespace dupn
