// The model as the core packs it for the kernels at build time (the layouts are pack.h's): dense weights
// transposed, LSTM gates fused (and interleaved for the fused recurrent step), attention and first head
// layers split by input block.
// Internal to the core (encode, heads, model building, training); callers outside it see dupn/model.h.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "dupn/aligned.h"
#include "dupn/kernels.h"
#include "dupn/model.h"
#include "projection_cache.h"

namespace dupn {

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

class Model {
 public:
  // What build does with the dense weights once they check out. The trainer wants only the dimensions,
  // heads and tables (it packs its own copies and repacks them after every step), so it skips the packing.
  enum class Weights { Pack, CheckOnly };

  // Validates the spec (sizes, consistency) and packs weights; returns null with *error set on failure
  // (build_model of dupn/model.h, for callers outside the core). CheckOnly leaves every packed buffer below
  // empty and ignores the serving options (projection cache, bf16, gate block).
  static std::unique_ptr<Model> build(const ModelSpec& spec, std::string* error, Weights weights = Weights::Pack);

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
    // in blocks of gate_block units × gates i, f, g, o; gp columns, zero for padding units. wh_i is
    // block-major where the kernels ask for it (KernelTable::wh_block_major), else row-major like wxp_i.
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

}  // namespace dupn
