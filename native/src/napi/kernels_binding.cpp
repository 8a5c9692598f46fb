// Direct access to one instruction set's kernels, so tests can hold each against a float64 reference
// on odd sizes. Sizes are checked against the arrays: these are reachable from JavaScript too.
#include <napi.h>

#include <string>
#include <vector>

#include "convert.h"
#include "dupn/kernels.h"
#include "kernels_binding.h"

namespace dupn_napi {
namespace {

const dupn::KernelTable& table(const Napi::Value& isa) {
  std::string error;
  const dupn::KernelTable* k = dupn::select_kernels(isa.IsString() ? isa.As<Napi::String>().Utf8Value() : "", &error);
  if (!k) throw_code(isa.Env(), codes::kInput, error);
  return *k;
}

void need(Napi::Env env, bool ok, const char* what) {
  if (!ok) throw_code(env, codes::kInput, std::string(what) + ": array too short for the given sizes");
}

// sgemm(isa, M, N, K, A, lda, B, C, ldc, accumulate, bias?)
Napi::Value Sgemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const dupn::KernelTable& k = table(info[0]);
  const int M = int_arg(info[1], "M", 0, 1 << 20), N = int_arg(info[2], "N", 0, 1 << 20), K = int_arg(info[3], "K", 0, 1 << 20);
  View<float> A = f32(info[4], "A"), B = f32(info[6], "B"), C = f32(info[7], "C");
  const int lda = int_arg(info[5], "lda", 0, 1 << 24), ldc = int_arg(info[8], "ldc", 0, 1 << 24);
  need(env, lda >= K && ldc >= N, "lda/ldc");
  need(env, M == 0 || K == 0 || A.length >= static_cast<int64_t>(M - 1) * lda + K, "A");
  need(env, B.length >= static_cast<int64_t>(K) * N, "B");
  need(env, M == 0 || N == 0 || C.length >= static_cast<int64_t>(M - 1) * ldc + N, "C");
  View<float> bias = f32(info[10], "bias", true);
  need(env, bias.data == nullptr || bias.length >= N, "bias");
  k.sgemm(M, N, K, A.data, lda, B.data, C.data, ldc, info[9].ToBoolean(), bias.data);
  return env.Undefined();
}

// lstmCell(isa, H, z, gx, c, h)
Napi::Value LstmCell(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const dupn::KernelTable& k = table(info[0]);
  const int H = int_arg(info[1], "H", 0, 1 << 20);
  View<float> z = f32(info[2], "z"), gx = f32(info[3], "gx"), c = f32(info[4], "c"), h = f32(info[5], "h");
  need(env, z.length >= 4 * H && gx.length >= 4 * H && c.length >= H && h.length >= H, "z/gx/c/h");
  k.lstm_cell(H, z.data, gx.data, c.data, h.data);
  return env.Undefined();
}

// lstmCellTrain(isa, H, pre, cPrev, c, tc, h): pre becomes the activated gates
Napi::Value LstmCellTrain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const dupn::KernelTable& k = table(info[0]);
  const int H = int_arg(info[1], "H", 0, 1 << 20);
  View<float> pre = f32(info[2], "pre"), cp = f32(info[3], "cPrev"), c = f32(info[4], "c"), tc = f32(info[5], "tc"), h = f32(info[6], "h");
  need(env, pre.length >= 4 * H && cp.length >= H && c.length >= H && tc.length >= H && h.length >= H, "pre/cPrev/c/tc/h");
  k.lstm_cell_train(H, pre.data, cp.data, c.data, tc.data, h.data);
  return env.Undefined();
}

// tanhMap(isa, n, x, y): y = tanh(x)
Napi::Value TanhMap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const dupn::KernelTable& k = table(info[0]);
  const int n = int_arg(info[1], "n", 0, 1 << 30);
  View<float> x = f32(info[2], "x"), y = f32(info[3], "y");
  need(env, x.length >= n && y.length >= n, "x/y");
  k.tanh_map(n, x.data, y.data);
  return env.Undefined();
}

// tanhDot(isa, A, s, b, v) → Σ v·tanh(s + b)
Napi::Value TanhDot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const dupn::KernelTable& k = table(info[0]);
  const int A = int_arg(info[1], "A", 0, 1 << 20);
  View<float> s = f32(info[2], "s"), b = f32(info[3], "b"), v = f32(info[4], "v");
  need(env, s.length >= A && b.length >= A && v.length >= A, "s/b/v");
  return Napi::Number::New(env, k.tanh_dot(A, s.data, b.data, v.data));
}

// reluDot(isa, M, K, x, ldx, w, bias, out): out[m] = bias + Σ_k max(x[m, k], 0) · w[k]
Napi::Value ReluDot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const dupn::KernelTable& k = table(info[0]);
  const int M = int_arg(info[1], "M", 0, 1 << 20), K = int_arg(info[2], "K", 0, 1 << 20);
  View<float> x = f32(info[3], "x"), w = f32(info[5], "w"), out = f32(info[7], "out");
  const int ldx = int_arg(info[4], "ldx", 0, 1 << 24);
  need(env, ldx >= K, "ldx");
  need(env, M == 0 || x.length >= static_cast<int64_t>(M - 1) * ldx + K, "x");
  need(env, w.length >= K && out.length >= M, "w/out");
  if (!info[6].IsNumber()) throw_code(env, codes::kInput, "bias must be a number");
  k.relu_dot(M, K, x.data, ldx, w.data, info[6].As<Napi::Number>().FloatValue(), out.data);
  return env.Undefined();
}

// sgemmBf16(M, N, K, A, lda, B, C, ldc, accumulate, bias?): the bf16 path on fp32 inputs (A is rounded to bf16
// pairs like the encoder does; B, K × N, is packed like model weights). Throws E_UNSUPPORTED without
// AVX-512-BF16.
Napi::Value SgemmBf16(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const dupn::Bf16Kernels* k = dupn::bf16_kernels();
  if (!k) throw_code(env, codes::kUnsupported, "this CPU has no AVX-512-BF16");
  const int M = int_arg(info[0], "M", 0, 1 << 20), N = int_arg(info[1], "N", 0, 1 << 20), K = int_arg(info[2], "K", 0, 1 << 20);
  View<float> A = f32(info[3], "A"), B = f32(info[5], "B"), C = f32(info[6], "C");
  const int lda = int_arg(info[4], "lda", 0, 1 << 24), ldc = int_arg(info[7], "ldc", 0, 1 << 24);
  need(env, lda >= K && ldc >= N, "lda/ldc");
  need(env, M == 0 || K == 0 || A.length >= static_cast<int64_t>(M - 1) * lda + K, "A");
  need(env, B.length >= static_cast<int64_t>(K) * N, "B");
  need(env, M == 0 || N == 0 || C.length >= static_cast<int64_t>(M - 1) * ldc + N, "C");
  View<float> bias = f32(info[9], "bias", true);
  need(env, bias.data == nullptr || bias.length >= N, "bias");
  const int K2 = (K + 1) / 2;
  dupn::AlignedPairs a(static_cast<size_t>(M) * K2 + 1);
  k->convert(M, K, A.data, lda, a.data());
  const dupn::AlignedPairs b = dupn::pack_bf16_pairs(B.data, K, N);
  k->gemm(M, N, K2, a.data(), K2, b.data(), C.data, ldc, info[8].ToBoolean(), bias.data);
  return env.Undefined();
}

// lstmStepBf16(M, H, hPrev, wh, gx, c, hNext, hNextBf): the bf16 fused step on fp32 inputs in its interleaved
// layout (KernelTable::gate_block = bf16GateBlock units per block, hp = H rounded up to it, gp = 4·hp): hPrev,
// c and hNext are M rows of hp, wh is H × gp (rounded to bf16 and paired inside, like model weights), gx is M
// rows of gp; hNextBf gets M rows of hp / 2 pairs. Throws E_UNSUPPORTED without AVX-512-BF16.
Napi::Value LstmStepBf16(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const dupn::Bf16Kernels* k = dupn::bf16_kernels();
  if (!k) throw_code(env, codes::kUnsupported, "this CPU has no AVX-512-BF16");
  const int M = int_arg(info[0], "M", 0, 1 << 16), H = int_arg(info[1], "H", 1, 1 << 12);
  View<float> hprev = f32(info[2], "hPrev"), wh = f32(info[3], "wh"), gx = f32(info[4], "gx"), c = f32(info[5], "c"),
              hnext = f32(info[6], "hNext");
  View<uint32_t> hb = typed<uint32_t, napi_uint32_array>(info[7], "hNextBf");
  const int gb = k->gate_block, hp = (H + gb - 1) / gb * gb, gp = 4 * hp;
  const int64_t rows = M;
  need(env, hprev.length >= rows * hp && c.length >= rows * hp && hnext.length >= rows * hp, "hPrev/c/hNext");
  need(env, wh.length >= static_cast<int64_t>(H) * gp && gx.length >= rows * gp && hb.length >= rows * hp / 2, "wh/gx/hNextBf");
  dupn::AlignedPairs a(static_cast<size_t>(rows) * hp / 2 + 1);
  k->convert(M, hp, hprev.data, hp, a.data());
  const dupn::AlignedPairs w = dupn::pack_bf16_pairs(wh.data, H, gp);
  std::vector<const float*> gx_rows(static_cast<size_t>(M) + 1);
  for (int r = 0; r < M; ++r) gx_rows[r] = gx.data + static_cast<int64_t>(r) * gp;
  k->lstm_step(M, H, a.data(), hp, w.data(), gp, gx_rows.data(), c.data, hnext.data, hb.data);
  return env.Undefined();
}

}  // namespace

void InitKernels(Napi::Env env, Napi::Object exports) {
  Napi::Object k = Napi::Object::New(env);
  k.Set("sgemm", Napi::Function::New(env, Sgemm));
  k.Set("lstmCell", Napi::Function::New(env, LstmCell));
  k.Set("tanhDot", Napi::Function::New(env, TanhDot));
  k.Set("lstmCellTrain", Napi::Function::New(env, LstmCellTrain));
  k.Set("tanhMap", Napi::Function::New(env, TanhMap));
  k.Set("reluDot", Napi::Function::New(env, ReluDot));
  k.Set("sgemmBf16", Napi::Function::New(env, SgemmBf16));
  k.Set("lstmStepBf16", Napi::Function::New(env, LstmStepBf16));
  k.Set("hasBf16", Napi::Boolean::New(env, dupn::bf16_kernels() != nullptr));
  k.Set("bf16GateBlock", Napi::Number::New(env, dupn::bf16_kernels() ? dupn::bf16_kernels()->gate_block : 0));
  exports.Set("kernels", k);
}

}  // namespace dupn_napi
