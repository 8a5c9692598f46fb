// Conversions between JavaScript values and the core's plain structs. Every failure throws a JS Error
// with a `code` property (mapped to DupnError in TypeScript) naming the argument.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>

namespace dupn_napi {

[[noreturn]] inline void throw_code(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  throw err;
}

template <typename T>
struct View {
  T* data = nullptr;
  int64_t length = 0;
};

template <typename T, napi_typedarray_type kType>
View<T> typed(const Napi::Value& v, const char* what, bool allow_null = false) {
  if (allow_null && (v.IsNull() || v.IsUndefined())) return {};
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != kType)
    throw_code(v.Env(), "E_INPUT", std::string(what) + ": expected a " +
                                       (kType == napi_float32_array ? "Float32Array" : "Int32Array"));
  auto arr = v.As<Napi::TypedArrayOf<T>>();
  return {arr.Data(), static_cast<int64_t>(arr.ElementLength())};
}

inline View<float> f32(const Napi::Value& v, const char* what, bool allow_null = false) {
  return typed<float, napi_float32_array>(v, what, allow_null);
}
inline View<int32_t> i32(const Napi::Value& v, const char* what) { return typed<int32_t, napi_int32_array>(v, what); }

inline int32_t int_arg(const Napi::Value& v, const char* what, int32_t min, int32_t max) {
  if (!v.IsNumber()) throw_code(v.Env(), "E_INPUT", std::string(what) + ": expected an integer");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= min && d <= max) || d != static_cast<double>(static_cast<int64_t>(d)))
    throw_code(v.Env(), "E_INPUT", std::string(what) + ": expected an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  return static_cast<int32_t>(d);
}

}  // namespace dupn_napi
