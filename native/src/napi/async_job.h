#pragma once
#include <napi.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace dupn_napi {

// Runs fn on the compute pool and returns a Promise settled on the JavaScript thread. There `finish` (if
// any) runs first: it delivers the job's outputs and returns "" or why it could not (the Promise then
// rejects with E_INPUT). An exception from fn rejects it with E_INTERNAL. `pins` (objects the job reads in
// place: only arrays the library itself owns) and `keep` stay alive until then.
//
// A worker thread torn down with jobs queued or running (worker.terminate()): jobs not started are skipped,
// and the environment's teardown waits for running ones to finish before V8 frees what they read; their
// Promises are never settled (the environment is gone) and what they hold is leaked, never freed from a
// thread that does not own it.
Napi::Promise submit(Napi::Env env, std::shared_ptr<void> keep, const std::vector<Napi::Value>& pins, std::function<void()> fn,
                     std::function<std::string()> finish = {});

}  // namespace dupn_napi
