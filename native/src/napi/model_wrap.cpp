// The NativeModel class: builds a core Model from borrowed weights and runs encode/score/predict either
// synchronously or on a worker thread that settles a Promise. Inputs are read in place; outputs go to
// caller-owned Float32Arrays. Everything an async job touches is pinned until it settles.
#include <napi.h>

#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "convert.h"
#include "dupn/model.h"
#include "dupn/thread_pool.h"
#include "model_wrap.h"

namespace dupn_napi {
namespace {

// The core model plus references that keep its borrowed embedding tables alive. Released on the JS
// thread only: by the wrapper (dispose/finalize) or by the last job that used it.
struct Holder {
  std::unique_ptr<dupn::Model> model;
  std::vector<Napi::ObjectReference> refs;
};

// One async call: run on the compute pool's dispatcher (never on libuv's threads), then settled on the
// JavaScript thread through a threadsafe function. Everything it reads or writes stays pinned until then.
struct AsyncJob {
  Napi::Promise::Deferred deferred;
  std::shared_ptr<Holder> holder;
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

Napi::Promise submit(Napi::Env env, std::shared_ptr<Holder> holder, const std::vector<Napi::Value>& pins, std::function<void()> fn) {
  auto* job = new AsyncJob{Napi::Promise::Deferred::New(env), std::move(holder), {}, std::move(fn), {}};
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
      delete j;  // releases the pins and the model on the JavaScript thread
      Completions& c = completions(env);
      if (--c.pending == 0) c.tsfn.Unref(env);
    });
  });
  return promise;
}

Napi::Object obj(const Napi::Value& v, const std::string& what) {
  if (!v.IsObject()) throw_code(v.Env(), "E_INPUT", what + ": expected an object");
  return v.As<Napi::Object>();
}

dupn::Table table(const Napi::Value& v, const std::string& what, Holder& h) {
  Napi::Object o = obj(v, what);
  dupn::Table t;
  t.rows = int_arg(o.Get("rows"), (what + ".rows").c_str(), 0, 0x7fffffff);
  t.dim = int_arg(o.Get("dim"), (what + ".dim").c_str(), 0, 1 << 20);
  View<float> data = f32(o.Get("data"), (what + ".data").c_str(), t.dim == 0);
  if (t.dim > 0) {
    if (data.length != t.rows * static_cast<int64_t>(t.dim)) throw_code(v.Env(), "E_INPUT", what + ": data has the wrong length");
    t.data = data.data;
    h.refs.push_back(Napi::Persistent(o.Get("data").As<Napi::Object>()));
  }
  return t;
}

const float* weights(const Napi::Object& o, const char* key, int64_t expected, const std::string& what) {
  View<float> w = f32(o.Get(key), (what + "." + key).c_str());
  if (w.length != expected)
    throw_code(o.Env(), "E_INPUT", what + "." + key + ": expected " + std::to_string(expected) + " values, got " + std::to_string(w.length));
  return w.data;
}

dupn::UserBatch user_batch(const Napi::Value& v) {
  Napi::Object o = obj(v, "columns");
  dupn::UserBatch b;
  View<int32_t> lengths = i32(o.Get("lengths"), "lengths");
  View<int32_t> items = i32(o.Get("items"), "items");
  View<int32_t> props = i32(o.Get("properties"), "properties");
  View<int32_t> qoff = i32(o.Get("queryOffsets"), "queryOffsets");
  View<int32_t> qtok = i32(o.Get("queryTokens"), "queryTokens");
  View<int32_t> profile = i32(o.Get("profile"), "profile");
  if (lengths.length > 0x7fffffff) throw_code(v.Env(), "E_INPUT", "lengths: too many users");
  b.batch = static_cast<int>(lengths.length);
  if (qoff.length != lengths.length + 1) throw_code(v.Env(), "E_INPUT", "queryOffsets: expected lengths.length + 1 entries");
  b.lengths = lengths.data;
  b.items = items.data;
  b.items_len = items.length;
  b.properties = props.data;
  b.properties_len = props.length;
  b.query_offsets = qoff.data;
  b.query_tokens = qtok.data;
  b.query_token_count = qtok.length;
  b.profile = profile.data;
  b.profile_len = profile.length;
  return b;
}

class NativeModel : public Napi::ObjectWrap<NativeModel> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeModel",
                       {InstanceMethod<&NativeModel::Encode>("encode"), InstanceMethod<&NativeModel::Score>("score"),
                        InstanceMethod<&NativeModel::Predict>("predict"), InstanceMethod<&NativeModel::Release>("release"),
                        InstanceAccessor<&NativeModel::Isa>("isa")});
  }

  // new NativeModel(spec, isa: string) — isa "" picks the best for this CPU.
  explicit NativeModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeModel>(info) {
    Napi::Env env = info.Env();
    std::string isa_error;
    const std::string forced = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
    kernels_ = dupn::select_kernels(forced, &isa_error);
    if (!kernels_) throw_code(env, "E_INPUT", isa_error);

    auto holder = std::make_shared<Holder>();
    Napi::Object s = obj(info[0], "spec");
    dupn::ModelSpec spec;
    spec.max_seq_len = int_arg(s.Get("maxSeqLen"), "maxSeqLen", 1, 1 << 20);
    spec.hidden = int_arg(s.Get("hidden"), "hidden", 1, 1 << 16);
    spec.directions = int_arg(s.Get("directions"), "directions", 1, 2);
    spec.attention_hidden = int_arg(s.Get("attentionHidden"), "attentionHidden", 1, 1 << 16);
    spec.projection_cache = int_arg(s.Get("projectionCache"), "projectionCache", 0, 1 << 24);
    spec.bf16 = s.Get("bf16").ToBoolean();
    spec.gate_block = kernels_->lstm_step ? kernels_->gate_block : 0;
    if (spec.bf16 && (!dupn::bf16_kernels() || std::string(kernels_->isa) != "avx512"))
      throw_code(env, "E_UNSUPPORTED",
                 std::string("precision \"bf16\" needs AVX-512-BF16 and the avx512 path; this CPU runs ") + dupn::supported_isas() +
                     (dupn::bf16_kernels() ? " (the isa option forced " + std::string(kernels_->isa) + ")" : " without AVX-512-BF16"));
    auto tables = [&](const char* key) {
      std::vector<dupn::Table> out;
      Napi::Value arr = s.Get(key);
      if (!arr.IsArray()) throw_code(env, "E_INPUT", std::string(key) + ": expected an array");
      Napi::Array a = arr.As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(table(a.Get(i), std::string(key) + "[" + std::to_string(i) + "]", *holder));
      return out;
    };
    spec.item_tables = tables("itemTables");
    spec.profile_tables = tables("profileTables");
    spec.type_table = table(s.Get("typeTable"), "typeTable", *holder);
    spec.gap_table = table(s.Get("gapTable"), "gapTable", *holder);
    spec.scene_table = table(s.Get("sceneTable"), "sceneTable", *holder);
    spec.query_table = table(s.Get("queryTable"), "queryTable", *holder);

    int64_t dx = 0, dp = spec.type_table.dim + spec.gap_table.dim + spec.scene_table.dim, du = 0;
    for (auto& t : spec.item_tables) dx += t.dim;
    for (auto& t : spec.profile_tables) du += t.dim;
    const int64_t H = spec.hidden, dh = H * spec.directions, A = spec.attention_hidden;
    const int64_t user_dim = dh + du + spec.query_table.dim;

    Napi::Value lstm = s.Get("lstm");
    if (!lstm.IsArray() || lstm.As<Napi::Array>().Length() != static_cast<uint32_t>(spec.directions))
      throw_code(env, "E_INPUT", "lstm: expected one entry per direction");
    for (int d = 0; d < spec.directions; ++d) {
      const std::string what = "lstm[" + std::to_string(d) + "]";
      Napi::Object l = obj(lstm.As<Napi::Array>().Get(d), what);
      spec.lstm[d].wx = weights(l, "wx", 4 * H * dx, what);
      spec.lstm[d].wp = weights(l, "wp", 3 * H * dp, what);
      spec.lstm[d].wh = weights(l, "wh", 4 * H * H, what);
      spec.lstm[d].b = weights(l, "b", 4 * H, what);
    }
    Napi::Object attn = obj(s.Get("attn"), "attn");
    spec.attn_w = weights(attn, "w", A * (dh + spec.query_table.dim + du + dp), "attn");
    spec.attn_b = weights(attn, "b", A, "attn");
    spec.attn_v = weights(attn, "v", A, "attn");

    Napi::Value heads = s.Get("heads");
    if (!heads.IsArray()) throw_code(env, "E_INPUT", "heads: expected an array");
    for (uint32_t i = 0; i < heads.As<Napi::Array>().Length(); ++i) {
      const std::string what = "heads[" + std::to_string(i) + "]";
      Napi::Object ho = obj(heads.As<Napi::Array>().Get(i), what);
      dupn::HeadIn h;
      h.kind = static_cast<dupn::TaskKind>(int_arg(ho.Get("kind"), (what + ".kind").c_str(), 0, 2));
      h.dense = int_arg(ho.Get("dense"), (what + ".dense").c_str(), 0, 1 << 20);
      Napi::Value tf = ho.Get("targetFields");
      if (!tf.IsArray()) throw_code(env, "E_INPUT", what + ".targetFields: expected an array");
      for (uint32_t j = 0; j < tf.As<Napi::Array>().Length(); ++j)
        h.target_fields.push_back(int_arg(tf.As<Napi::Array>().Get(j), (what + ".targetFields").c_str(), 0, static_cast<int32_t>(spec.item_tables.size()) - 1));
      int64_t width = user_dim + h.dense;
      for (int f : h.target_fields) width += spec.item_tables[f].dim;
      Napi::Value layers = ho.Get("layers");
      if (!layers.IsArray()) throw_code(env, "E_INPUT", what + ".layers: expected an array");
      for (uint32_t k = 0; k < layers.As<Napi::Array>().Length(); ++k) {
        const std::string lw = what + ".layers[" + std::to_string(k) + "]";
        Napi::Object lo = obj(layers.As<Napi::Array>().Get(k), lw);
        dupn::DenseIn d;
        d.in = static_cast<int>(width);
        d.out = int_arg(lo.Get("out"), (lw + ".out").c_str(), 1, 1 << 20);
        d.w = weights(lo, "w", static_cast<int64_t>(d.out) * width, lw);
        d.b = weights(lo, "b", d.out, lw);
        h.layers.push_back(d);
        width = d.out;
      }
      spec.heads.push_back(std::move(h));
    }

    std::string error;
    holder->model = dupn::Model::build(spec, &error);
    if (!holder->model) throw_code(env, "E_MODEL_FILE", error);
    holder_ = std::move(holder);
  }

 private:
  const dupn::Model& model(Napi::Env env) {
    if (!holder_) throw_code(env, "E_DISPOSED", "the model was disposed");
    return *holder_->model;
  }

  // Runs fn now, or on a worker thread returning a Promise, pinning `pins` until it settles.
  Napi::Value Run(const Napi::CallbackInfo& info, bool async, const std::vector<Napi::Value>& pins, std::function<void()> fn) {
    if (!async) {
      fn();
      return info.Env().Undefined();
    }
    return submit(info.Env(), holder_, pins, std::move(fn));
  }

  // encode(columns, users: Float32Array, attention: Float32Array | null, threads, async)
  Napi::Value Encode(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const dupn::Model& m = model(env);
    dupn::UserBatch in = user_batch(info[0]);
    View<float> users = f32(info[1], "users output");
    View<float> attention = f32(info[2], "attention output", true);
    const int threads = int_arg(info[3], "threads", 1, 1024);
    const std::string err = dupn::validate_users(m, in);
    if (!err.empty()) throw_code(env, "E_INPUT", "columns." + err);
    int64_t steps = 0;
    for (int b = 0; b < in.batch; ++b) steps += in.lengths[b];
    if (users.length != static_cast<int64_t>(in.batch) * m.user_dim)
      throw_code(env, "E_INPUT", "users output: expected " + std::to_string(static_cast<int64_t>(in.batch) * m.user_dim) + " floats");
    if (attention.data && attention.length != steps)
      throw_code(env, "E_INPUT", "attention output: expected " + std::to_string(steps) + " floats (Σ lengths)");
    const dupn::KernelTable* k = kernels_;
    std::shared_ptr<Holder> h = holder_;
    return Run(info, info[4].ToBoolean(), {info[0], info[0].As<Napi::Object>().Get("lengths"), info[0].As<Napi::Object>().Get("items"),
                                           info[0].As<Napi::Object>().Get("properties"), info[0].As<Napi::Object>().Get("queryOffsets"),
                                           info[0].As<Napi::Object>().Get("queryTokens"), info[0].As<Napi::Object>().Get("profile"), info[1], info[2]},
               [h, k, in, users, attention, threads] { dupn::encode(*h->model, *k, in, users.data, attention.data, threads); });
  }

  // score(heads: number[], user: Float32Array, candidates {items, dense}, outs: Float32Array[], threads, async):
  // every listed binary/rank head scores the same candidates in one call (one job, one settle).
  Napi::Value Score(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const dupn::Model& m = model(env);
    if (!info[0].IsArray() || !info[3].IsArray()) throw_code(env, "E_INPUT", "score: heads and outs must be arrays");
    Napi::Array heads = info[0].As<Napi::Array>(), outs = info[3].As<Napi::Array>();
    if (heads.Length() != outs.Length()) throw_code(env, "E_INPUT", "score: one output per head");
    View<float> user = f32(info[1], "userVector");
    if (user.length != m.user_dim) throw_code(env, "E_INPUT", "userVector: expected " + std::to_string(m.user_dim) + " floats");
    Napi::Object c = obj(info[2], "candidates");
    View<int32_t> items = i32(c.Get("items"), "candidates.items");
    View<float> dense = f32(c.Get("dense"), "candidates.dense");
    const int threads = int_arg(info[4], "threads", 1, 1024);
    dupn::CandidateBatch in;
    if (m.item_fields() == 0 || items.length % m.item_fields() != 0 || items.length / m.item_fields() > 0x7fffffff)
      throw_code(env, "E_INPUT", "candidates.items: length is not a multiple of the item-field count");
    in.count = static_cast<int>(items.length / m.item_fields());
    in.items = items.data;
    in.items_len = items.length;
    in.dense = dense.data;
    in.dense_len = dense.length;
    std::vector<std::pair<int, float*>> jobs;
    std::vector<Napi::Value> pins = {info[1], info[2], c.Get("items"), c.Get("dense")};
    for (uint32_t i = 0; i < heads.Length(); ++i) {
      const int hi = int_arg(heads.Get(i), "head", 0, static_cast<int32_t>(m.heads.size()) - 1);
      if (m.heads[hi].kind == dupn::TaskKind::Multiclass) throw_code(env, "E_TASK", "score: head is multiclass");
      const std::string err = dupn::validate_candidates(m, m.heads[hi], in);
      if (!err.empty()) throw_code(env, "E_INPUT", "candidates." + err);
      View<float> out = f32(outs.Get(i), "scores output");
      if (out.length != in.count) throw_code(env, "E_INPUT", "scores output: expected one float per candidate");
      jobs.emplace_back(hi, out.data);
      pins.push_back(outs.Get(i));
    }
    const dupn::KernelTable* k = kernels_;
    std::shared_ptr<Holder> h = holder_;
    return Run(info, info[5].ToBoolean(), pins, [h, k, jobs, user, in, threads] {
      for (const auto& [hi, out] : jobs) dupn::score(*h->model, *k, h->model->heads[hi], user.data, in, out, threads);
    });
  }

  // predict(head, users: Float32Array (B × userDim), out: Float32Array (B × classes), async)
  Napi::Value Predict(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const dupn::Model& m = model(env);
    const int hi = int_arg(info[0], "head", 0, static_cast<int32_t>(m.heads.size()) - 1);
    const dupn::Head& head = m.heads[hi];
    if (head.kind != dupn::TaskKind::Multiclass) throw_code(env, "E_TASK", "predict: head is not multiclass");
    View<float> users = f32(info[1], "users");
    View<float> out = f32(info[2], "probabilities output");
    if (users.length % m.user_dim != 0) throw_code(env, "E_INPUT", "users: length is not a multiple of userDim");
    const int64_t batch = users.length / m.user_dim;
    if (out.length != batch * head.outputs) throw_code(env, "E_INPUT", "probabilities output: expected batch × classes floats");
    const dupn::KernelTable* k = kernels_;
    std::shared_ptr<Holder> h = holder_;
    return Run(info, info[3].ToBoolean(), {info[1], info[2]},
               [h, k, hi, users, out, batch] { dupn::predict(*h->model, *k, h->model->heads[hi], users.data, static_cast<int>(batch), out.data); });
  }

  Napi::Value Release(const Napi::CallbackInfo& info) {
    holder_.reset();
    return info.Env().Undefined();
  }

  Napi::Value Isa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), kernels_->isa); }

  std::shared_ptr<Holder> holder_;
  const dupn::KernelTable* kernels_ = nullptr;
};

}  // namespace

void InitModel(Napi::Env env, Napi::Object exports) { exports.Set("NativeModel", NativeModel::Define(env)); }

}  // namespace dupn_napi
