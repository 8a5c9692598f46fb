// Module entry: hashing, the model class and facts about the build and the CPU.
#include <napi.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "convert.h"

#include "dupn/kernels.h"
#include "hash.h"
#include "json_numbers.h"
#include "kernels_binding.h"
#include "map_file.h"
#include "model_wrap.h"
#include "trainer_wrap.h"

// measureFmaPeak(isa: string, threads: number, millis: number) → GFLOP/s of independent multiply-adds
// on `threads` threads at once: the yardstick the benchmarks report against.
static Napi::Value MeasureFmaPeak(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string error;
  const dupn::KernelTable* k = dupn::select_kernels(info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "", &error);
  if (!k) dupn_napi::throw_code(env, dupn_napi::codes::kInput, error);
  const int threads = dupn_napi::int_arg(info[1], "threads", 1, 1024);
  const double millis = dupn_napi::int_arg(info[2], "millis", 1, 60000);
  // Calibrate one thread's iteration count to ~millis, then run all threads together.
  int64_t iters = 1 << 16;
  for (;;) {
    auto t0 = std::chrono::steady_clock::now();
    k->fma_peak(iters);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (ms > millis / 8 || iters > (int64_t(1) << 40)) {
      iters = static_cast<int64_t>(iters * (millis / std::max(ms, 1e-3)));
      break;
    }
    iters *= 4;
  }
  std::vector<double> flops(threads, 0.0);
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { flops[t] = k->fma_peak(iters); });
  for (auto& th : pool) th.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double total = 0;
  for (double f : flops) total += f;
  return Napi::Number::New(env, total / secs / 1e9);
}

static Napi::Object InitDupn(Napi::Env env, Napi::Object exports) {
  dupn_napi::InitHash(env, exports);
  dupn_napi::InitJsonNumbers(env, exports);
  dupn_napi::InitModel(env, exports);
  dupn_napi::InitTrainer(env, exports);
  dupn_napi::InitKernels(env, exports);
  dupn_napi::InitMapFile(env, exports);
  exports.Set("measureFmaPeak", Napi::Function::New(env, MeasureFmaPeak));
  exports.Set("supportedIsas", Napi::String::New(env, dupn::supported_isas()));
  Napi::Array codes = Napi::Array::New(env);
  for (const char* code : dupn_napi::codes::kAll) codes.Set(codes.Length(), Napi::String::New(env, code));
  exports.Set("errorCodes", codes);
  return exports;
}

NODE_API_MODULE(dupn, InitDupn)
