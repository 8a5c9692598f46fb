// The DUPN model as the native core's callers see it: the spec a model is built from (dimensions, borrowed
// embedding tables and weights), the columnar batches it reads, and the entry points of the forward pass.
// The packed layouts the kernels read are internal to the core (native/src/core/packed_model.h). Plain
// C++17, no Node-API.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "dupn/kernels.h"

namespace dupn {

// An embedding table owned by the caller (the JavaScript side keeps it alive): ids 0 .. rows - 1, each a row of
// dim floats. Dense, `data` holds rows × dim floats. Sparse (a hashed table stored by the rows training used,
// docs/format.md), `keys` lists the `stored` ids that have a row, strictly increasing, `data` holds their
// rows in that order, and every other id's row is zero.
struct Table {
  const float* data = nullptr;
  int64_t rows = 0;
  int dim = 0;
  const int32_t* keys = nullptr;
  int64_t stored = 0;

  // Row of `id` (in 0 .. rows - 1), or nullptr for an id whose row is zero.
  const float* row(int64_t id) const {
    if (keys == nullptr) return data + id * dim;
    int64_t lo = 0, hi = stored;
    while (lo < hi) {
      const int64_t mid = (lo + hi) >> 1;
      if (keys[mid] < id) lo = mid + 1;
      else hi = mid;
    }
    return lo < stored && keys[lo] == id ? data + lo * dim : nullptr;
  }

  // Copies the row of `id` to dst (dim floats; zeros for an id with no row).
  void copy_row(int64_t id, float* dst) const {
    if (dim == 0) return;
    const float* r = row(id);
    if (r) std::memcpy(dst, r, sizeof(float) * dim);
    else std::fill(dst, dst + dim, 0.0f);
  }
};

// A dense layer y = W x + b as stored in the model file: W is out × in, row-major.
struct DenseIn {
  const float* w = nullptr;
  const float* b = nullptr;
  int out = 0, in = 0;
};

struct LstmIn {
  const float* wx = nullptr;  // [4H, Dx] gates i, f, g, o
  const float* wp = nullptr;  // [3H, Dp] gates i, f, o
  const float* wh = nullptr;  // [4H, H]
  const float* b = nullptr;   // [4H]
};

enum class TaskKind : int { Binary = 0, Rank = 1, Multiclass = 2, Retrieval = 3 };

struct HeadIn {
  TaskKind kind = TaskKind::Binary;
  std::vector<int> target_fields;  // indices into item_tables, in target order
  int dense = 0;
  std::vector<DenseIn> layers;       // retrieval: the user tower (first layer sees U)
  std::vector<DenseIn> item_layers;  // retrieval: the item tower (first layer sees t)
  const float* dense_w = nullptr;    // retrieval: [dense] weights of the linear dense term
};

// Everything needed to build a Model; pointers are borrowed for the life of the Model.
struct ModelSpec {
  int max_seq_len = 0;
  int hidden = 0;
  int directions = 1;
  int attention_hidden = 0;
  std::vector<Table> item_tables;     // one per item field (dim may be 0)
  Table type_table, gap_table, scene_table, query_table;
  std::vector<Table> profile_tables;  // one per profile field (dim may be 0)
  LstmIn lstm[2];
  const float* attn_w = nullptr;      // [A, dh + dq + du + dp]
  const float* attn_b = nullptr;
  const float* attn_v = nullptr;
  std::vector<HeadIn> heads;
  int projection_cache = 0;  // candidates cached per head (0: no cache)
  bool bf16 = false;         // precision "bf16" for the big products (needs bf16_kernels())
  int gate_block = 0;        // KernelTable::gate_block of the kernels that will run (0: no fused step)
  bool wh_block_major = false;  // KernelTable::wh_block_major of those kernels
};

// Borrowed columnar inputs of a user batch (see lib/model/columns.ts).
struct UserBatch {
  int batch = 0;
  const int32_t* lengths = nullptr;
  const int32_t* items = nullptr;       // [N × F]
  const int32_t* properties = nullptr;  // [N × 3]
  const int32_t* query_offsets = nullptr;
  const int32_t* query_tokens = nullptr;
  int64_t query_token_count = 0;
  const int32_t* profile = nullptr;     // [B × P]
  int64_t items_len = 0, properties_len = 0, profile_len = 0;
};

struct CandidateBatch {
  int count = 0;
  const int32_t* items = nullptr;  // [C × F]
  int64_t items_len = 0;
  const float* dense = nullptr;    // [C × dense]
  int64_t dense_len = 0;
};

// The model packed for the kernels (its weights transposed, gates fused, attention split by input block) and
// its heads: their layout is the core's alone (native/src/core/packed_model.h). Outside the core a Model is
// built, asked for what the functions below answer, and passed back to the core's entry points.
struct Head;
class Model;

// Deletes a Model (its size is known only to the core).
struct ModelDeleter {
  void operator()(Model* m) const;
};
using ModelPtr = std::unique_ptr<Model, ModelDeleter>;

// Validates the spec (sizes, consistency) and packs weights; returns null with *error set on failure.
ModelPtr build_model(const ModelSpec& spec, std::string* error);

// What a built model says of itself to its callers.
int user_dim(const Model& m);                // floats per user vector U
int item_field_count(const Model& m);        // ids per item row (behaviours and candidates)
int head_count(const Model& m);              // heads, in spec order
const Head& head_at(const Model& m, int i);  // 0 <= i < head_count(m)
TaskKind head_kind(const Head& h);
int head_outputs(const Head& h);  // floats per user of predict: a multiclass head's classes, a retrieval head's vector width

// Checks every id of a batch against its table (untrusted columnar input); "" when valid, else a
// message naming the field and the offending position.
std::string validate_users(const Model& m, const UserBatch& in);
// `with_dense` false checks the ids only (a retrieval head's item tower never reads dense features).
std::string validate_candidates(const Model& m, const Head& h, const CandidateBatch& in, bool with_dense = true);

// U for every user (B × user_dim) and, when attention is non-null, the attention weight of every kept
// behaviour (N = Σ lengths, in input order). Splits the batch across `threads` threads.
void encode(const Model& m, const KernelTable& k, const UserBatch& in, float* users, float* attention, int threads);

// One binary/rank head and where its scores go (one float per candidate).
struct ScoreJob {
  const Head* head;
  float* out;
};

// One score per candidate and head for one user vector (binary → probability, rank → raw score); the heads
// share the candidates and run in one parallel loop over (head, candidate block).
void score(const Model& m, const KernelTable& k, const std::vector<ScoreJob>& jobs, const float* user,
           const CandidateBatch& in, int threads);

// Class probabilities (B × classes) of a multiclass head from B user vectors; for a retrieval head the
// user tower's output (B × outputs, raw).
void predict(const Model& m, const KernelTable& k, const Head& h, const float* users, int batch, float* out);

// The item tower's vector (C × outputs) of every candidate of a retrieval head (validated beforehand).
void item_vectors(const Model& m, const KernelTable& k, const Head& h, const CandidateBatch& in, float* out, int threads);

// Exact top-k by dot product: the `k` of n rows with the largest ⟨row, query⟩, best first (ties: lower row
// first), skipping rows whose `skip` byte is non-zero (skip may be null). `blocked` holds the rows in blocks
// of `block` rows (the last may be shorter), each block transposed (dim × its rows), so that one block's
// scores are one wide GEMM row. Writes min(k, rows left) entries and returns that count.
int top_k(const KernelTable& k, const float* blocked, int64_t n, int dim, int block, const float* query, int count,
          const uint8_t* skip, int32_t* index, float* score, int threads);

}  // namespace dupn
