// Hashing bindings: FarmHash Fingerprint64 of UTF-8 bytes, and bucketing of many strings in one call
// (the feature pipeline's hot path, so values cross the boundary once per batch, not once per value).
#include <napi.h>

#include <string>
#include <vector>

#include "convert.h"
#include "dupn/fingerprint64.h"
#include "hash.h"

namespace dupn_napi {
namespace {

// UTF-8 bytes of a JS string into `buf`; small strings avoid a heap allocation.
const char* utf8(napi_env env, napi_value s, std::vector<char>& buf, size_t* len) {
  size_t n = 0;
  napi_get_value_string_utf8(env, s, nullptr, 0, &n);
  if (buf.size() < n + 1) buf.resize(n + 1);
  napi_get_value_string_utf8(env, s, buf.data(), buf.size(), len);
  return buf.data();
}

Napi::Value Fingerprint64(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw_code(env, codes::kInput, "fingerprint64: value must be a string");
  std::vector<char> buf(256);
  size_t len = 0;
  const char* p = utf8(env, info[0], buf, &len);
  return Napi::BigInt::New(env, static_cast<uint64_t>(dupn::fingerprint64(p, len)));
}

// bucketStrings(values: string[], buckets, out: Int32Array, offset, stride): out[offset + i*stride] =
// fingerprint64(values[i]) % buckets.
Napi::Value BucketStrings(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throw_code(env, codes::kInput, "bucketStrings: values must be an array of strings");
  Napi::Array values = info[0].As<Napi::Array>();
  const uint32_t buckets = static_cast<uint32_t>(int_arg(info[1], "buckets", 1, 0x7fffffff));
  View<int32_t> out = i32(info[2], "out");
  const int64_t offset = int_arg(info[3], "offset", 0, 0x7fffffff);
  const int64_t stride = int_arg(info[4], "stride", 1, 0x7fffffff);
  const uint32_t n = values.Length();
  if (n > 0 && offset + static_cast<int64_t>(n - 1) * stride >= out.length)
    throw_code(env, codes::kInput, "bucketStrings: out is too short");
  std::vector<char> buf(256);
  for (uint32_t i = 0; i < n; ++i) {
    napi_value v;
    napi_get_element(env, values, i, &v);
    napi_valuetype type;
    napi_typeof(env, v, &type);
    if (type != napi_string) throw_code(env, codes::kInput, "bucketStrings: values[" + std::to_string(i) + "] is not a string");
    size_t len = 0;
    const char* p = utf8(env, v, buf, &len);
    out.data[offset + i * stride] = static_cast<int32_t>(dupn::bucket_of(dupn::fingerprint64(p, len), buckets));
  }
  return env.Undefined();
}

}  // namespace

void InitHash(Napi::Env env, Napi::Object exports) {
  exports.Set("fingerprint64", Napi::Function::New(env, Fingerprint64));
  exports.Set("bucketStrings", Napi::Function::New(env, BucketStrings));
}

}  // namespace dupn_napi
