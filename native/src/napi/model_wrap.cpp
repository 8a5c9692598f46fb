// The NativeModel class: builds a core Model from borrowed weights and runs encode/score/predict either
// synchronously or on a worker thread that settles a Promise. What a call reads from the caller's arrays is
// copied first and validated as copied (convert.h: copy_of); outputs go to the caller's arrays, for async
// calls through an owned buffer delivered when the job settles (convert.h: Output). Arrays the library owns
// (a catalogue's vectors) are read in place and pinned until the job settles.
#include <napi.h>

#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "async_job.h"
#include "convert.h"
#include "spec.h"
#include "dupn/model.h"
#include "dupn/thread_pool.h"
#include "model_wrap.h"

namespace dupn_napi {
namespace {

// The core model plus references that keep its borrowed embedding tables alive. Released on the JS
// thread only: by the wrapper (dispose/finalize) or by the last job that used it.
struct Holder {
  dupn::ModelPtr model;
  std::vector<Napi::ObjectReference> refs;
};

// Candidate columns {items, dense}, copied (convert.h: copy_of).
struct Candidates {
  std::vector<int32_t> items;
  std::vector<float> dense;
  int count = 0;
  dupn::CandidateBatch batch() const {
    dupn::CandidateBatch b;
    b.count = count;
    b.items = items.data();
    b.items_len = static_cast<int64_t>(items.size());
    b.dense = dense.data();
    b.dense_len = static_cast<int64_t>(dense.size());
    return b;
  }
};

std::shared_ptr<const Candidates> candidates(const Napi::Value& v, const dupn::Model& m, bool with_dense = true) {
  Napi::Object c = obj(v, "candidates");
  auto out = std::make_shared<Candidates>();
  out->items = i32_copy(c.Get("items"), "candidates.items");
  if (with_dense) out->dense = f32_copy(c.Get("dense"), "candidates.dense");
  const int64_t n = static_cast<int64_t>(out->items.size());
  const int64_t fields = dupn::item_field_count(m);
  if (fields == 0 || n % fields != 0 || n / fields > 0x7fffffff)
    throw_code(v.Env(), codes::kInput, "candidates.items: length is not a multiple of the item-field count");
  out->count = static_cast<int>(n / fields);
  return out;
}

class NativeModel : public Napi::ObjectWrap<NativeModel> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeModel",
                       {InstanceMethod<&NativeModel::Encode>("encode"), InstanceMethod<&NativeModel::Score>("score"),
                        InstanceMethod<&NativeModel::Predict>("predict"), InstanceMethod<&NativeModel::ItemVectors>("itemVectors"),
                        InstanceMethod<&NativeModel::TopK>("topK"), InstanceMethod<&NativeModel::Release>("release"),
                        InstanceAccessor<&NativeModel::Isa>("isa")});
  }

  // new NativeModel(spec, isa: string) — isa "" picks the best for this CPU.
  explicit NativeModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeModel>(info) {
    Napi::Env env = info.Env();
    std::string isa_error;
    const std::string forced = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
    kernels_ = dupn::select_kernels(forced, &isa_error);
    if (!kernels_) throw_code(env, codes::kInput, isa_error);

    auto holder = std::make_shared<Holder>();
    Napi::Object s = obj(info[0], "spec");
    dupn::ModelSpec spec = parse_spec(s, holder->refs);
    spec.projection_cache = int_arg(s.Get("projectionCache"), "projectionCache", 0, 1 << 24);
    spec.bf16 = s.Get("bf16").ToBoolean();
    spec.gate_block = kernels_->lstm_step ? kernels_->gate_block : 0;
    spec.wh_block_major = kernels_->lstm_step && kernels_->wh_block_major;
    if (spec.bf16 && (!dupn::bf16_kernels() || std::string(kernels_->isa) != "avx512"))
      throw_code(env, codes::kUnsupported,
                 std::string("precision \"bf16\" needs AVX-512-BF16 and the avx512 path; this CPU runs ") + dupn::supported_isas() +
                     (dupn::bf16_kernels() ? " (the isa option forced " + std::string(kernels_->isa) + ")" : " without AVX-512-BF16"));
    std::string error;
    holder->model = dupn::build_model(spec, &error);
    if (!holder->model) throw_code(env, codes::kConfig, "the config does not build a model: " + error);
    holder_ = std::move(holder);
  }

 private:
  const dupn::Model& model(Napi::Env env) {
    if (!holder_) throw_code(env, codes::kDisposed, "the model was disposed");
    return *holder_->model;
  }

  using Outputs = std::vector<std::shared_ptr<const Delivery>>;

  // Runs fn now, or on a worker thread returning a Promise that delivers `outs` (the first failure rejects
  // it) and settles, pinning `pins` until then.
  Napi::Value Run(const Napi::CallbackInfo& info, bool async, const std::vector<Napi::Value>& pins, std::function<void()> fn, Outputs outs) {
    if (!async) {
      fn();
      return info.Env().Undefined();
    }
    return submit(info.Env(), holder_, pins, std::move(fn), [outs = std::move(outs)] {
      for (const auto& o : outs) {
        std::string why = o->deliver();
        if (!why.empty()) return why;
      }
      return std::string();
    });
  }

  // encode(columns, users: Float32Array, attention: Float32Array | null, threads, async)
  Napi::Value Encode(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const dupn::Model& m = model(env);
    const bool async = info[4].ToBoolean();
    std::shared_ptr<const UserColumns> cols = user_columns(info[0], "columns");
    const dupn::UserBatch in = cols->batch();
    auto users = std::make_shared<F32Out>(info[1], "users output", async);
    auto attention = std::make_shared<F32Out>(info[2], "attention output", async, true);
    const int threads = int_arg(info[3], "threads", 1, 1024);
    const std::string err = dupn::validate_users(m, in);
    if (!err.empty()) throw_code(env, codes::kInput, "columns." + err);
    int64_t steps = 0;
    for (int b = 0; b < in.batch; ++b) steps += in.lengths[b];
    const int64_t floats = static_cast<int64_t>(in.batch) * dupn::user_dim(m);
    if (users->length() != floats) throw_code(env, codes::kInput, "users output: expected " + std::to_string(floats) + " floats");
    if (attention->data() && attention->length() != steps)
      throw_code(env, codes::kInput, "attention output: expected " + std::to_string(steps) + " floats (Σ lengths)");
    const dupn::KernelTable* k = kernels_;
    std::shared_ptr<Holder> h = holder_;
    return Run(info, async, {}, [h, k, cols, in, users, attention, threads] {
      dupn::encode(*h->model, *k, in, users->data(), attention->data(), threads);
    }, {users, attention});
  }

  // score(heads: number[], user: Float32Array, candidates {items, dense}, outs: Float32Array[], threads, async):
  // every listed binary/rank head scores the same candidates in one call (one job, one settle).
  Napi::Value Score(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const dupn::Model& m = model(env);
    const bool async = info[5].ToBoolean();
    if (!info[0].IsArray() || !info[3].IsArray()) throw_code(env, codes::kInput, "score: heads and outs must be arrays");
    Napi::Array heads = info[0].As<Napi::Array>(), outs = info[3].As<Napi::Array>();
    if (heads.Length() != outs.Length()) throw_code(env, codes::kInput, "score: one output per head");
    auto user = std::make_shared<const std::vector<float>>(f32_copy(info[1], "userVector"));
    if (static_cast<int64_t>(user->size()) != dupn::user_dim(m)) throw_code(env, codes::kInput, "userVector: expected " + std::to_string(dupn::user_dim(m)) + " floats");
    std::shared_ptr<const Candidates> cands = candidates(info[2], m);
    const dupn::CandidateBatch in = cands->batch();
    const int threads = int_arg(info[4], "threads", 1, 1024);
    // Head pointers stay valid while the job holds `holder_` (the model it points into).
    std::vector<dupn::ScoreJob> jobs;
    Outputs delivered;
    for (uint32_t i = 0; i < heads.Length(); ++i) {
      const dupn::Head& head = dupn::head_at(m, int_arg(heads.Get(i), "head", 0, dupn::head_count(m) - 1));
      if (dupn::head_kind(head) == dupn::TaskKind::Multiclass) throw_code(env, codes::kTask, "score: head is multiclass");
      const std::string err = dupn::validate_candidates(m, head, in);
      if (!err.empty()) throw_code(env, codes::kInput, "candidates." + err);
      auto out = std::make_shared<F32Out>(outs.Get(i), "scores output", async);
      if (out->length() != in.count) throw_code(env, codes::kInput, "scores output: expected one float per candidate");
      jobs.push_back({&head, out->data()});
      delivered.push_back(std::move(out));
    }
    const dupn::KernelTable* k = kernels_;
    std::shared_ptr<Holder> h = holder_;
    return Run(info, async, {}, [h, k, jobs, user, cands, in, threads] {
      dupn::score(*h->model, *k, jobs, user->data(), in, threads);
    }, std::move(delivered));
  }

  // predict(head, users: Float32Array (B × userDim), out: Float32Array (B × classes), async)
  Napi::Value Predict(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const dupn::Model& m = model(env);
    const bool async = info[3].ToBoolean();
    const int hi = int_arg(info[0], "head", 0, dupn::head_count(m) - 1);
    const dupn::Head& head = dupn::head_at(m, hi);
    if (dupn::head_kind(head) != dupn::TaskKind::Multiclass && dupn::head_kind(head) != dupn::TaskKind::Retrieval)
      throw_code(env, codes::kTask, "predict: head is not multiclass or retrieval");
    auto users = std::make_shared<const std::vector<float>>(f32_copy(info[1], "users"));
    auto out = std::make_shared<F32Out>(info[2], "probabilities output", async);
    const int64_t n = static_cast<int64_t>(users->size());
    if (n % dupn::user_dim(m) != 0) throw_code(env, codes::kInput, "users: length is not a multiple of userDim");
    const int64_t batch = n / dupn::user_dim(m);
    if (batch > 0x7fffffff) throw_code(env, codes::kInput, "users: too many users");
    if (out->length() != batch * dupn::head_outputs(head)) throw_code(env, codes::kInput, "probabilities output: expected batch × classes floats");
    const dupn::KernelTable* k = kernels_;
    std::shared_ptr<Holder> h = holder_;
    return Run(info, async, {}, [h, k, hi, users, out, batch] {
      dupn::predict(*h->model, *k, dupn::head_at(*h->model, hi), users->data(), static_cast<int>(batch), out->data());
    }, {out});
  }

  // itemVectors(head, candidates {items, dense}, out: Float32Array (C × dim), threads, async): a retrieval
  // head's item tower over every candidate.
  Napi::Value ItemVectors(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const dupn::Model& m = model(env);
    const bool async = info[4].ToBoolean();
    const int hi = int_arg(info[0], "head", 0, dupn::head_count(m) - 1);
    const dupn::Head& head = dupn::head_at(m, hi);
    if (dupn::head_kind(head) != dupn::TaskKind::Retrieval) throw_code(env, codes::kTask, "itemVectors: head is not a retrieval head");
    std::shared_ptr<const Candidates> cands = candidates(info[1], m, false);
    const dupn::CandidateBatch in = cands->batch();
    const std::string err = dupn::validate_candidates(m, head, in, false);
    if (!err.empty()) throw_code(env, codes::kInput, "candidates." + err);
    auto out = std::make_shared<F32Out>(info[2], "vectors output", async);
    if (out->length() != static_cast<int64_t>(in.count) * dupn::head_outputs(head)) throw_code(env, codes::kInput, "vectors output: expected candidates × dim floats");
    const int threads = int_arg(info[3], "threads", 1, 1024);
    const dupn::KernelTable* k = kernels_;
    std::shared_ptr<Holder> h = holder_;
    return Run(info, async, {}, [h, k, hi, cands, in, out, threads] {
      dupn::item_vectors(*h->model, *k, dupn::head_at(*h->model, hi), in, out->data(), threads);
    }, {out});
  }

  // topK(vectors: Float32Array (n × dim, in blocks of `block` rows, each transposed), dim, block,
  //      query: Float32Array (dim), k, skip: Uint8Array (n) | null, index: Int32Array (k), score: Float32Array (k),
  //      found: Int32Array (1), threads, async). `vectors` and `skip` are the library's own (a catalogue and
  //      its exclusion mask), read in place; the query is copied.
  Napi::Value TopK(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    model(env);
    const bool async = info[10].ToBoolean();
    const int dim = int_arg(info[1], "dim", 1, 1 << 20);
    const int block = int_arg(info[2], "block", 1, 1 << 20);
    View<float> vectors = f32(info[0], "vectors");
    auto query = std::make_shared<const std::vector<float>>(f32_copy(info[3], "query"));
    const int k = int_arg(info[4], "k", 0, 1 << 24);
    if (vectors.length % dim != 0) throw_code(env, codes::kInput, "vectors: length is not a multiple of dim");
    const int64_t n = vectors.length / dim;
    if (n > 0x7fffffff) throw_code(env, codes::kInput, "vectors: more than 2^31 - 1 rows");
    if (static_cast<int64_t>(query->size()) != dim) throw_code(env, codes::kInput, "query: expected dim floats");
    const uint8_t* skip = nullptr;
    if (!info[5].IsNull() && !info[5].IsUndefined()) {
      if (!info[5].IsTypedArray() || info[5].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
        throw_code(env, codes::kInput, "skip: expected a Uint8Array");
      Napi::Uint8Array a = info[5].As<Napi::Uint8Array>();
      if (static_cast<int64_t>(a.ElementLength()) != n) throw_code(env, codes::kInput, "skip: expected one byte per row");
      skip = a.Data();
    }
    auto index = std::make_shared<I32Out>(info[6], "index output", async);
    auto score = std::make_shared<F32Out>(info[7], "score output", async);
    auto found = std::make_shared<I32Out>(info[8], "found output", async);
    if (index->length() != k || score->length() != k || found->length() != 1) throw_code(env, codes::kInput, "topK: outputs must hold k entries (found: 1)");
    const int threads = int_arg(info[9], "threads", 1, 1024);
    const dupn::KernelTable* kt = kernels_;
    return Run(info, async, {info[0], info[5]}, [kt, vectors, n, dim, block, query, k, skip, index, score, found, threads] {
      found->data()[0] = dupn::top_k(*kt, vectors.data, n, dim, block, query->data(), k, skip, index->data(), score->data(), threads);
    }, {index, score, found});
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
