// The NativeTrainer class: a core Trainer over JavaScript-owned parameters and optimizer state, with
// step (async or sync) and gradients (sync, for checks). A batch is checked on the JavaScript thread
// before any work starts; every array a job reads or writes stays pinned until it settles.
#include <napi.h>

#include <atomic>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "async_job.h"
#include "convert.h"
#include "dupn/train.h"
#include "spec.h"
#include "trainer_wrap.h"

namespace dupn_napi {
namespace {

struct TrainerHolder {
  std::unique_ptr<dupn::Trainer> trainer;
  std::vector<Napi::ObjectReference> refs;
  std::atomic<bool> busy{false};  // one step at a time: a second would race on the weights
};

// A batch {users, heads: [{items, dense, owner, label, weight, classes, classWeight, lambda, pairwise}]}
// as core structs, plus every array to pin.
struct ParsedBatch {
  dupn::TrainBatch batch;
  std::shared_ptr<const UserColumns> users;  // what batch.users points into
  std::vector<Napi::Value> pins;
};

ParsedBatch parse_batch(const Napi::Value& v, const dupn::Model& m) {
  ParsedBatch out;
  Napi::Object o = obj(v, "batch");
  out.users = user_columns(o.Get("users"), "batch.users");
  out.batch.users = out.users->batch();
  Napi::Value heads = o.Get("heads");
  const uint32_t H = static_cast<uint32_t>(dupn::head_count(m));
  if (!heads.IsArray() || heads.As<Napi::Array>().Length() != H)
    throw_code(v.Env(), codes::kInput, "batch.heads: expected one entry per head");
  const int64_t B = out.batch.users.batch, F = dupn::item_field_count(m);
  for (uint32_t h = 0; h < H; ++h) {
    const std::string at = "batch.heads[" + std::to_string(h) + "]";
    Napi::Object ho = obj(heads.As<Napi::Array>().Get(h), at);
    dupn::HeadLabels lab;
    Napi::Value lambda = ho.Get("lambda");
    if (!lambda.IsNumber()) throw_code(v.Env(), codes::kInput, at + ".lambda: expected a number");
    lab.lambda = lambda.As<Napi::Number>().FloatValue();
    lab.pairwise = ho.Get("pairwise").ToBoolean();
    if (dupn::head_kind(dupn::head_at(m, static_cast<int>(h))) == dupn::TaskKind::Multiclass) {
      View<int32_t> classes = i32(ho.Get("classes"), (at + ".classes").c_str());
      View<float> weight = f32(ho.Get("classWeight"), (at + ".classWeight").c_str());
      if (classes.length != B || weight.length != B) throw_code(v.Env(), codes::kInput, at + ": classes and classWeight need one entry per user");
      lab.classes = classes.data;
      lab.class_weight = weight.data;
      out.pins.push_back(ho.Get("classes"));
      out.pins.push_back(ho.Get("classWeight"));
    } else {
      View<int32_t> items = i32(ho.Get("items"), (at + ".items").c_str());
      View<float> dense = f32(ho.Get("dense"), (at + ".dense").c_str());
      View<int32_t> owner = i32(ho.Get("owner"), (at + ".owner").c_str());
      View<float> label = f32(ho.Get("label"), (at + ".label").c_str());
      View<float> weight = f32(ho.Get("weight"), (at + ".weight").c_str());
      const int64_t C = owner.length;
      if (C > 0x7fffffff || items.length != C * F || label.length != C || weight.length != C)
        throw_code(v.Env(), codes::kInput, at + ": items (C × item fields), owner, label and weight must describe the same C candidates");
      lab.candidates.count = static_cast<int>(C);
      lab.candidates.items = items.data;
      lab.candidates.items_len = items.length;
      lab.candidates.dense = dense.data;
      lab.candidates.dense_len = dense.length;
      lab.owner = owner.data;
      lab.label = label.data;
      lab.weight = weight.data;
      View<float> offset = f32(ho.Get("offset"), (at + ".offset").c_str(), true);
      if (offset.data && offset.length != C) throw_code(v.Env(), codes::kInput, at + ".offset: expected one entry per candidate");
      lab.offset = offset.data;
      for (const char* key : {"items", "dense", "owner", "label", "weight", "offset"}) out.pins.push_back(ho.Get(key));
    }
    out.batch.heads.push_back(lab);
  }
  return out;
}

class NativeTrainer : public Napi::ObjectWrap<NativeTrainer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeTrainer",
                       {InstanceMethod<&NativeTrainer::Step>("step"), InstanceMethod<&NativeTrainer::Gradients>("gradients"),
                        InstanceMethod<&NativeTrainer::Release>("release"), InstanceAccessor<&NativeTrainer::Isa>("isa")});
  }

  // new NativeTrainer(spec, isa, params: {data, m, v, avg?}[]) — spec as for NativeModel; its weight arrays
  // are the params' data arrays, updated in place by step(), which also moves each `avg` given.
  explicit NativeTrainer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeTrainer>(info) {
    Napi::Env env = info.Env();
    std::string isa_error;
    kernels_ = dupn::select_kernels(info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "", &isa_error);
    if (!kernels_) throw_code(env, codes::kInput, isa_error);
    auto holder = std::make_shared<TrainerHolder>();
    dupn::ModelSpec spec = parse_spec(obj(info[0], "spec"), holder->refs);
    if (!info[2].IsArray()) throw_code(env, codes::kInput, "params: expected an array");
    Napi::Array arr = info[2].As<Napi::Array>();
    std::vector<dupn::Param> params;
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      const std::string at = "params[" + std::to_string(i) + "]";
      Napi::Object p = obj(arr.Get(i), at);
      View<float> data = f32(p.Get("data"), (at + ".data").c_str());
      View<float> m = f32(p.Get("m"), (at + ".m").c_str());
      View<float> v = f32(p.Get("v"), (at + ".v").c_str());
      // m and v as long as data, (row-wise state of a table, checked by the core) no m and one v per row, or
      // neither (a param that is never updated).
      const bool full = m.length == data.length && v.length == data.length;
      const bool rows = m.length == 0 && v.length > 0 && v.length < data.length && data.length % v.length == 0;
      const bool none = m.length == 0 && v.length == 0;
      if (!full && !rows && !none)
        throw_code(env, codes::kInput, at + ": m and v must match data in length (or m empty and v one per row, or both empty)");
      native_index_.push_back(data.length == 0 ? -1 : static_cast<int>(params.size()));
      if (data.length == 0) continue;
      dupn::Param param{data.data, m.data, v.data, data.length, m.length, v.length};
      if (!p.Get("avg").IsUndefined()) {
        View<float> avg = f32(p.Get("avg"), (at + ".avg").c_str());
        if (avg.length != data.length || none) throw_code(env, codes::kInput, at + ".avg: must match data in length (and the param be trained)");
        param.avg = avg.data;
        holder->refs.push_back(Napi::Persistent(p.Get("avg").As<Napi::Object>()));
      }
      params.push_back(param);
      for (const char* key : {"data", "m", "v"}) holder->refs.push_back(Napi::Persistent(p.Get(key).As<Napi::Object>()));
    }
    sizes_.clear();
    for (uint32_t i = 0; i < arr.Length(); ++i) sizes_.push_back(f32(arr.Get(i).As<Napi::Object>().Get("data"), "data").length);
    std::string error;
    holder->trainer = dupn::Trainer::create(spec, params, &error);
    if (!holder->trainer) throw_code(env, codes::kConfig, "the config does not build a trainer: " + error);
    holder_ = std::move(holder);
  }

 private:
  dupn::Trainer& trainer(Napi::Env env) {
    if (!holder_) throw_code(env, codes::kDisposed, "the trainer was disposed");
    return *holder_->trainer;
  }

  // { dropout: rate in [0, 1), dropoutSeed: integer } — a new seed per step (the trainer mixes in the step).
  static dupn::Dropout dropout(const Napi::Object& o) {
    dupn::Dropout d;
    d.rate = number(o, "dropout", 0, 0.95);
    const Napi::Value seed = o.Get("dropoutSeed");
    const double s = seed.IsNumber() ? seed.As<Napi::Number>().DoubleValue() : -1;
    if (!(s >= 0 && s <= 9007199254740991.0) || s != std::floor(s))
      throw_code(o.Env(), codes::kInput, "options.dropoutSeed: must be an integer in [0, 2^53)");
    d.seed = static_cast<uint64_t>(s);
    return d;
  }

  // options[key], a number in [min, max] (NaN and non-numbers refused).
  static double real(const Napi::Object& o, const char* key, double min, double max) {
    Napi::Value v = o.Get(key);
    const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1e300;
    if (!(d >= min && d <= max)) throw_code(o.Env(), codes::kInput, std::string("options.") + key + ": out of range");
    return d;
  }

  static float number(const Napi::Object& o, const char* key, double min, double max) {
    return static_cast<float>(real(o, key, min, max));
  }

  // step(batch, options, report: Float64Array (2 + 2 × heads), threads, async)
  Napi::Value Step(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    dupn::Trainer& t = trainer(env);
    ParsedBatch pb = parse_batch(info[0], t.model());
    const std::string err = t.validate(pb.batch);
    if (!err.empty()) throw_code(env, codes::kInput, "batch." + err);
    Napi::Object o = obj(info[1], "options");
    dupn::OptimizerConfig opt;
    opt.lr = number(o, "lr", 0, 1e3);
    opt.embedding_lr = number(o, "embeddingLr", 0, 1e3);
    opt.beta1 = number(o, "beta1", 0, 0.999999);
    opt.beta2 = number(o, "beta2", 0, 0.99999999);
    opt.eps = number(o, "eps", 1e-30, 1);
    opt.clip_norm = number(o, "clipNorm", 0, 1e30);
    opt.embedding_adagrad = o.Get("embeddingAdagrad").ToBoolean();
    opt.train_shared = o.Get("trainShared").ToBoolean();
    opt.step = static_cast<int64_t>(real(o, "step", 1, 9e15));  // not through a float: exact past 2^24 steps
    if (!o.Get("dropout").IsUndefined()) opt.dropout = dropout(o);
    if (!o.Get("weightDecay").IsUndefined()) opt.weight_decay = number(o, "weightDecay", 0, 1);
    // A double, not a float: the rate is (1 − decay), and the average must round as JavaScript's did.
    if (!o.Get("averageRate").IsUndefined()) opt.average_rate = real(o, "averageRate", 0, 1);
    Napi::Value frozen = o.Get("frozen");
    if (frozen.IsArray()) {
      Napi::Array f = frozen.As<Napi::Array>();
      if (f.Length() != native_index_.size()) throw_code(env, codes::kInput, "options.frozen: one entry per param");
      opt.frozen.assign(native_index_.size(), false);
      for (uint32_t i = 0; i < f.Length(); ++i)
        if (native_index_[i] >= 0 && f.Get(i).ToBoolean()) opt.frozen[native_index_[i]] = true;
    }
    Napi::Value report = info[2];
    if (!report.IsTypedArray() || report.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
        report.As<Napi::Float64Array>().ElementLength() != 2 + 2 * static_cast<size_t>(dupn::head_count(t.model())))
      throw_code(env, codes::kInput, "report: expected a Float64Array of 2 + 2 × heads");
    double* out = report.As<Napi::Float64Array>().Data();
    const int threads = int_arg(info[3], "threads", 1, 1024);
    const dupn::KernelTable* k = kernels_;
    std::shared_ptr<TrainerHolder> h = holder_;
    auto batch = std::make_shared<dupn::TrainBatch>(std::move(pb.batch));
    if (h->busy.exchange(true)) throw_code(env, codes::kBusy, "step: the previous step has not finished (await it)");
    auto fn = [h, k, batch, users = pb.users, opt, out, threads] {
      struct Idle {
        TrainerHolder& h;
        ~Idle() { h.busy = false; }
      } idle{*h};
      const dupn::LossReport r = h->trainer->step(*k, *batch, opt, threads);
      write_report(r, out);
    };
    pb.pins.push_back(report);
    if (!info[4].ToBoolean()) {
      fn();
      return env.Undefined();
    }
    return submit(env, holder_, pb.pins, fn);
  }

  // gradients(batch, grads: Float32Array[] (one per param, its size), report, threads, dropout?: { dropout,
  // dropoutSeed }) — synchronous.
  Napi::Value Gradients(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    dupn::Trainer& t = trainer(env);
    if (holder_->busy) throw_code(env, codes::kBusy, "gradients: a step is running (await it)");
    ParsedBatch pb = parse_batch(info[0], t.model());
    const std::string err = t.validate(pb.batch);
    if (!err.empty()) throw_code(env, codes::kInput, "batch." + err);
    if (!info[1].IsArray() || info[1].As<Napi::Array>().Length() != sizes_.size()) throw_code(env, codes::kInput, "grads: one array per param");
    std::vector<float*> grads;
    for (uint32_t i = 0; i < sizes_.size(); ++i) {
      View<float> g = f32(info[1].As<Napi::Array>().Get(i), "grads[i]");
      if (g.length != sizes_[i]) throw_code(env, codes::kInput, "grads[" + std::to_string(i) + "]: wrong length");
      if (sizes_[i] > 0) grads.push_back(g.data);
    }
    Napi::Value report = info[2];
    if (!report.IsTypedArray() || report.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
        report.As<Napi::Float64Array>().ElementLength() != 2 + 2 * static_cast<size_t>(dupn::head_count(t.model())))
      throw_code(env, codes::kInput, "report: expected a Float64Array of 2 + 2 × heads");
    const dupn::Dropout drop = info[4].IsObject() ? dropout(info[4].As<Napi::Object>()) : dupn::Dropout{};
    const dupn::LossReport r = t.gradients(*kernels_, pb.batch, grads.data(), int_arg(info[3], "threads", 1, 1024), drop);
    write_report(r, report.As<Napi::Float64Array>().Data());
    return env.Undefined();
  }

  static void write_report(const dupn::LossReport& r, double* out) {
    out[0] = r.loss;
    out[1] = r.grad_norm;
    const size_t H = r.head_loss.size();
    for (size_t h = 0; h < H; ++h) {
      out[2 + h] = r.head_loss[h];
      out[2 + H + h] = r.head_weight[h];
    }
  }

  Napi::Value Release(const Napi::CallbackInfo& info) {
    holder_.reset();
    return info.Env().Undefined();
  }

  Napi::Value Isa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), kernels_->isa); }

  std::shared_ptr<TrainerHolder> holder_;
  const dupn::KernelTable* kernels_ = nullptr;
  std::vector<int64_t> sizes_;
  std::vector<int> native_index_;  // JS param i → core param index (-1: empty tensor, not passed)
};

}  // namespace

void InitTrainer(Napi::Env env, Napi::Object exports) { exports.Set("NativeTrainer", NativeTrainer::Define(env)); }

}  // namespace dupn_napi
