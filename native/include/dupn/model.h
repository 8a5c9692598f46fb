// The DUPN model as the native core sees it: dimensions, borrowed embedding tables and weights packed
// for the kernels at load time. Plain C++17, no Node-API.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dupn/aligned.h"
#include "dupn/kernels.h"
#include "dupn/projection_cache.h"

namespace dupn {

// An embedding table owned by the caller (the JavaScript side keeps it alive); rows × dim floats.
struct Table {
  const float* data = nullptr;
  int64_t rows = 0;
  int dim = 0;
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
};

// A dense layer packed for the kernels: W transposed to in × out.
struct PackedLayer {
  AlignedFloats wt;
  AlignedFloats b;
  int out = 0, in = 0;
};

struct Head {
  TaskKind kind;
  std::vector<int> target_fields;
  int target_dim = 0, dense = 0, outputs = 0;
  // Layer 0 split by input block so W_U·U is computed once per user (decoupled scoring).
  PackedLayer first_user, first_target, first_dense;  // b lives in first_user
  std::vector<PackedLayer> rest;
  // Retrieval: score = ⟨user tower(U), item tower(t)⟩ + dense_w·dense. The user tower is first_user + rest
  // (like a multiclass head's MLP, `outputs` = the vector width); the item tower is its own stack.
  std::vector<PackedLayer> item_tower;
  AlignedFloats dense_w;
  // W_t·t per candidate (retrieval: the item vector), when the model was built with a cache.
  std::unique_ptr<ProjectionCache> cache;
};

// Borrowed columnar inputs of a user batch (see lib/columns.ts).
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

class Model {
 public:
  // Validates the spec (sizes, consistency) and packs weights; returns null with *error set on failure.
  static std::unique_ptr<Model> build(const ModelSpec& spec, std::string* error);

  int max_seq_len, hidden, directions, dh, attention_hidden;
  int dx, dp, dq, du, user_dim;
  int item_fields() const { return static_cast<int>(item_tables.size()); }
  int profile_fields() const { return static_cast<int>(profile_tables.size()); }

  std::vector<Table> item_tables, profile_tables;
  Table type_table, gap_table, scene_table, query_table;

  struct Direction {
    AlignedFloats wxp_t;  // [(Dx + Dp), 4H]: wx and wp transposed, zero where g has no property term
    AlignedFloats wh_t;   // [H, 4H]
    AlignedFloats b;      // [4H]
    AlignedPairs wxp_bf, wh_bf;  // the same as bf16 pairs (precision "bf16" only)
    // The interleaved gate layout of the fused step (KernelTable::lstm_step), when it is used: columns
    // in blocks of gate_block units × gates i, f, g, o; gp columns, zero for padding units.
    AlignedFloats wxp_i, wh_i, b_i;
  } dir[2];

  // Fused recurrent step: units per block (0: GEMM + lstm_cell), padded units hp and columns gp.
  int gate_block = 0, hp = 0, gp = 0;

  // Non-null when the model runs its big products in bf16.
  const Bf16Kernels* bf16 = nullptr;
  AlignedPairs attn_h_bf;  // the H_t rows of attn_hp_t as bf16 pairs

  AlignedFloats attn_hp_t;  // [(dh + dp), A]: columns of attn.w that see H_t and p_t, transposed
  AlignedFloats attn_qu_t;  // [(dq + du), A]: columns that see q and u (constant per user)
  AlignedFloats attn_b, attn_v;

  std::vector<Head> heads;
};

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
