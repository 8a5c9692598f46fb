#pragma once
#include <napi.h>

#include <functional>
#include <memory>
#include <vector>

namespace dupn_napi {

// Runs fn on the compute pool and returns a Promise settled on the JavaScript thread: resolved with
// undefined, or rejected with an E_INTERNAL error carrying the exception's message. `pins` (objects:
// inputs and outputs) and `keep` stay alive until then.
Napi::Promise submit(Napi::Env env, std::shared_ptr<void> keep, const std::vector<Napi::Value>& pins, std::function<void()> fn);

}  // namespace dupn_napi
