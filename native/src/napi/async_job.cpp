// Async native calls: run on the compute pool's dispatcher threads (never on libuv's), settled on the
// JavaScript thread through one threadsafe function per environment.
#include "async_job.h"

#include <condition_variable>
#include <exception>
#include <mutex>

#include "convert.h"
#include "dupn/thread_pool.h"

namespace dupn_napi {
namespace {

// One async call. Everything it reads or writes stays pinned until it settles.
struct AsyncJob {
  Napi::Promise::Deferred deferred;
  std::shared_ptr<void> keep;  // what the job uses (a model, a trainer), released on the JS thread
  std::vector<Napi::ObjectReference> pins;
  std::function<void()> fn;
  std::function<std::string()> finish;
  std::string error;  // empty when fn succeeded
};

// One completion channel per JavaScript environment, kept referenced (holding the event loop open) only
// while jobs are pending, so an idle process can still exit. `unsettled` counts the jobs that pool threads
// may still touch (from submit until their settle is queued); the environment's cleanup hook sets
// `closing` and waits for it to reach 0.
struct Completions {
  Napi::ThreadSafeFunction tsfn;
  int pending = 0;  // JS thread only
  std::mutex mu;
  std::condition_variable idle;
  int unsettled = 0;
  bool closing = false;
};

void reject(Napi::Env env, AsyncJob* j, const char* code, const std::string& message) {
  j->deferred.Reject(coded_error(env, code, message).Value());
}

Completions& completions(Napi::Env env) {
  Completions* c = env.GetInstanceData<Completions>();
  if (!c) {
    c = new Completions();
    c->tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}), "dupn", 0, 1);
    c->tsfn.Unref(env);
    env.SetInstanceData<Completions>(c);
    // Registered after the threadsafe function, so it runs before the function's own teardown (hooks run in
    // reverse order) and before V8 frees the arrays that running jobs read.
    env.AddCleanupHook([c] {
      std::unique_lock<std::mutex> lock(c->mu);
      c->closing = true;
      c->idle.wait(lock, [c] { return c->unsettled == 0; });
    });
  }
  return *c;
}

}  // namespace

Napi::Promise submit(Napi::Env env, std::shared_ptr<void> keep, const std::vector<Napi::Value>& pins, std::function<void()> fn,
                     std::function<std::string()> finish) {
  auto* job = new AsyncJob{Napi::Promise::Deferred::New(env), std::move(keep), {}, std::move(fn), std::move(finish), {}};
  for (const Napi::Value& v : pins)
    if (v.IsObject()) job->pins.push_back(Napi::Persistent(v.As<Napi::Object>()));
  Napi::Promise promise = job->deferred.Promise();
  Completions* c = &completions(env);
  if (c->pending++ == 0) c->tsfn.Ref(env);
  {
    std::lock_guard<std::mutex> lock(c->mu);
    c->unsettled++;
  }
  Napi::ThreadSafeFunction tsfn = c->tsfn;
  dupn::ThreadPool::instance().submit([job, tsfn, c]() mutable {
    bool run;
    {
      std::lock_guard<std::mutex> lock(c->mu);
      run = !c->closing;
    }
    if (run) {
      try {
        job->fn();
      } catch (const std::exception& e) {
        job->error = e.what()[0] ? e.what() : "native failure";
      } catch (...) {
        job->error = "native failure";
      }
    }
    // While the environment closes, the queued settle is dropped with the queue (the callback then gets no
    // environment and does nothing): the job is leaked rather than freed off its thread.
    tsfn.BlockingCall(job, [](Napi::Env env, Napi::Function, AsyncJob* j) {
      try {
        if (!j->error.empty()) {
          reject(env, j, codes::kInternal, j->error);
        } else {
          const std::string why = j->finish ? j->finish() : std::string();
          if (why.empty()) j->deferred.Resolve(env.Undefined());
          else reject(env, j, codes::kInput, why);
        }
      } catch (...) {
        // The environment is shutting down and cannot take a settled Promise: nothing to report to.
      }
      delete j;  // releases the pins and what the job kept on the JavaScript thread
      Completions& cs = completions(env);
      if (--cs.pending == 0) cs.tsfn.Unref(env);
    });
    std::lock_guard<std::mutex> lock(c->mu);
    if (--c->unsettled == 0) c->idle.notify_all();
  });
  return promise;
}

}  // namespace dupn_napi
