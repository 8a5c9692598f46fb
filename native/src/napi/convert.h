// Conversions between JavaScript values and the core's plain structs. Every failure throws a JS Error
// with a `code` property (mapped to DupnError in TypeScript) naming the argument.
#pragma once
#include <napi.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "error_codes.h"

namespace dupn_napi {

// A JS Error carrying `code` (one of codes::k*), mapped to DupnError in TypeScript.
inline Napi::Error coded_error(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

[[noreturn]] inline void throw_code(Napi::Env env, const char* code, const std::string& message) {
  throw coded_error(env, code, message);
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
    throw_code(v.Env(), codes::kInput, std::string(what) + ": expected " +
                                       (kType == napi_float32_array  ? "a Float32Array"
                                        : kType == napi_uint32_array ? "a Uint32Array"
                                                                     : "an Int32Array"));
  auto arr = v.As<Napi::TypedArrayOf<T>>();
  return {arr.Data(), static_cast<int64_t>(arr.ElementLength())};
}

inline View<float> f32(const Napi::Value& v, const char* what, bool allow_null = false) {
  return typed<float, napi_float32_array>(v, what, allow_null);
}
inline View<int32_t> i32(const Napi::Value& v, const char* what) { return typed<int32_t, napi_int32_array>(v, what); }

// A copy, in memory the addon owns, of what a call reads from a caller's typed array, taken once on the
// JavaScript thread. Whatever the caller then does to its array — rewrite it, transfer or detach it, shrink a
// resizable buffer, hand out a fresh array from a getter, write a SharedArrayBuffer from another thread — a
// job reads only this copy: the worst outcome is a wrong answer for that caller. Ids and vectors are small
// beside the compute they feed.
template <typename T, napi_typedarray_type kType>
std::vector<T> copy_of(const Napi::Value& v, const char* what) {
  const View<T> view = typed<T, kType>(v, what);
  return std::vector<T>(view.data, view.data + view.length);
}

inline std::vector<int32_t> i32_copy(const Napi::Value& v, const char* what) { return copy_of<int32_t, napi_int32_array>(v, what); }
inline std::vector<float> f32_copy(const Napi::Value& v, const char* what) { return copy_of<float, napi_float32_array>(v, what); }

// What an async job hands back on the JavaScript thread when it settles: "" when done, else why not.
class Delivery {
 public:
  virtual ~Delivery() = default;
  virtual std::string deliver() const = 0;
};

// An output array of a call. A synchronous call writes the caller's array itself. An async job writes a
// buffer the addon owns, delivered into the caller's array on the JavaScript thread when the job settles,
// after checking that the array still has its length: one detached, transferred or resized meanwhile gets
// nothing, and the call rejects (E_INPUT) instead of a worker thread writing freed memory.
template <typename T, napi_typedarray_type kType>
class Output : public Delivery {
 public:
  Output(const Napi::Value& v, const char* what, bool async, bool allow_null = false) : what_(what) {
    const View<T> view = typed<T, kType>(v, what, allow_null);
    length_ = view.length;
    if (allow_null && (v.IsNull() || v.IsUndefined())) return;
    if (!async) {
      data_ = view.data;
      return;
    }
    own_.resize(static_cast<size_t>(length_));
    data_ = own_.data();
    ref_ = Napi::Persistent(v.As<Napi::Object>());
  }

  T* data() const { return data_; }
  int64_t length() const { return length_; }

  // JavaScript thread, when an async job settles: "" when delivered (or nothing to deliver), else why not.
  std::string deliver() const override {
    if (ref_.IsEmpty()) return "";
    auto arr = ref_.Value().As<Napi::TypedArrayOf<T>>();
    if (static_cast<int64_t>(arr.ElementLength()) != length_ || (length_ > 0 && arr.Data() == nullptr))
      return what_ + ": the array was detached, transferred or resized during the call; nothing was written";
    if (length_ > 0) std::memcpy(arr.Data(), own_.data(), static_cast<size_t>(length_) * sizeof(T));
    return "";
  }

 private:
  std::string what_;
  int64_t length_ = 0;
  T* data_ = nullptr;
  std::vector<T> own_;
  Napi::ObjectReference ref_;
};

using F32Out = Output<float, napi_float32_array>;
using I32Out = Output<int32_t, napi_int32_array>;

inline int32_t int_arg(const Napi::Value& v, const char* what, int32_t min, int32_t max) {
  if (!v.IsNumber()) throw_code(v.Env(), codes::kInput, std::string(what) + ": expected an integer");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= min && d <= max) || d != static_cast<double>(static_cast<int64_t>(d)))
    throw_code(v.Env(), codes::kInput, std::string(what) + ": expected an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  return static_cast<int32_t>(d);
}

}  // namespace dupn_napi
