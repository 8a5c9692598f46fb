// float32Json(values: Float32Array, row = 0): the JSON text of the values (rows of `row` when row > 0), each
// as float32's shortest round-trip decimal. One call per answer array, so the server's event loop prints no
// number itself.
#include <napi.h>

#include <string>

#include "convert.h"
#include "dupn/json_numbers.h"
#include "json_numbers.h"

namespace dupn_napi {
namespace {

Napi::Value Float32Json(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const View<float> values = f32(info[0], "float32Json: values");
  const int32_t row = info.Length() < 2 || info[1].IsUndefined() ? 0 : int_arg(info[1], "float32Json: row", 0, 0x7fffffff);
  if (row > 0 && values.length % row != 0)
    throw_code(env, codes::kInput, "float32Json: row (" + std::to_string(row) + ") does not divide the length (" + std::to_string(values.length) + ")");
  // One buffer per thread, kept between calls: a server calls this for every answer.
  thread_local std::string out;
  out.clear();
  dupn::append_float32_json(out, values.data, static_cast<size_t>(values.length), static_cast<size_t>(row));
  // Only ASCII is written, so Latin-1 is exact and skips UTF-8 decoding.
  napi_value text;
  NAPI_THROW_IF_FAILED(env, napi_create_string_latin1(env, out.data(), out.size(), &text), Napi::Value());
  return Napi::Value(env, text);
}

}  // namespace

void InitJsonNumbers(Napi::Env env, Napi::Object exports) {
  exports.Set("float32Json", Napi::Function::New(env, Float32Json));
}

}  // namespace dupn_napi
