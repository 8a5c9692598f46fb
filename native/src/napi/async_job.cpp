// Async native calls: run on the compute pool's dispatcher threads (never on libuv's), settled on the
// JavaScript thread through one threadsafe function per environment.
#include "async_job.h"

#include <exception>

#include "dupn/thread_pool.h"

namespace dupn_napi {
namespace {

// One async call: run on the compute pool's dispatcher (never on libuv's threads), then settled on the
// JavaScript thread through a threadsafe function. Everything it reads or writes stays pinned until then.
struct AsyncJob {
  Napi::Promise::Deferred deferred;
  std::shared_ptr<void> keep;  // what the job uses (a model, a trainer), released on the JS thread
  std::vector<Napi::ObjectReference> pins;
  std::function<void()> fn;
  std::string error;  // empty when fn succeeded
};

// One completion channel per JavaScript environment, kept referenced (holding the event loop open)
// only while jobs are pending, so an idle process can still exit.
struct Completions {
  Napi::ThreadSafeFunction tsfn;
  int pending = 0;
};

Completions& completions(Napi::Env env) {
  Completions* c = env.GetInstanceData<Completions>();
  if (!c) {
    c = new Completions();
    c->tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}), "dupn", 0, 1);
    c->tsfn.Unref(env);
    env.SetInstanceData<Completions>(c);
  }
  return *c;
}

}  // namespace

Napi::Promise submit(Napi::Env env, std::shared_ptr<void> keep, const std::vector<Napi::Value>& pins, std::function<void()> fn) {
  auto* job = new AsyncJob{Napi::Promise::Deferred::New(env), std::move(keep), {}, std::move(fn), {}};
  for (const Napi::Value& v : pins)
    if (v.IsObject()) job->pins.push_back(Napi::Persistent(v.As<Napi::Object>()));
  Napi::Promise promise = job->deferred.Promise();
  Completions& c = completions(env);
  if (c.pending++ == 0) c.tsfn.Ref(env);
  Napi::ThreadSafeFunction tsfn = c.tsfn;
  dupn::ThreadPool::instance().submit([job, tsfn]() mutable {
    try {
      job->fn();
    } catch (const std::exception& e) {
      job->error = e.what()[0] ? e.what() : "native failure";
    }
    tsfn.BlockingCall(job, [](Napi::Env env, Napi::Function, AsyncJob* j) {
      if (j->error.empty()) {
        j->deferred.Resolve(env.Undefined());
      } else {
        Napi::Error err = Napi::Error::New(env, j->error);
        err.Set("code", Napi::String::New(env, "E_INTERNAL"));
        j->deferred.Reject(err.Value());
      }
      delete j;  // releases the pins and what the job kept on the JavaScript thread
      Completions& c = completions(env);
      if (--c.pending == 0) c.tsfn.Unref(env);
    });
  });
  return promise;
}


}  // namespace dupn_napi
