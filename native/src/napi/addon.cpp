// Module entry: hashing, the model class and facts about the build and the CPU.
#include <napi.h>

#include "dupn/kernels.h"
#include "hash.h"
#include "model_wrap.h"

static Napi::Object InitDupn(Napi::Env env, Napi::Object exports) {
  dupn_napi::InitHash(env, exports);
  dupn_napi::InitModel(env, exports);
  exports.Set("supportedIsas", Napi::String::New(env, dupn::supported_isas()));
  return exports;
}

NODE_API_MODULE(dupn, InitDupn)
