// Internals of the Trainer shared by its files: which Param each weight is, the packed copies the GEMM
// kernel reads (pack.h's layouts, rewritten in place after every update), and gradient accumulators.
#pragma once
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "../packed_model.h"
#include "dupn/train.h"

namespace dupn {

// Gradient rows of one embedding table, in first-touch order (so reductions are deterministic).
struct SparseRows {
  int dim = 0;
  std::unordered_map<int32_t, int32_t> slot;  // row → index into rows/g
  std::vector<int32_t> rows;
  AlignedFloats g;

  float* row(int32_t r) {
    auto it = slot.find(r);
    if (it != slot.end()) return g.data() + static_cast<size_t>(it->second) * dim;
    const int32_t s = static_cast<int32_t>(rows.size());
    slot.emplace(r, s);
    rows.push_back(r);
    g.resize(g.size() + dim, 0.0f);
    return g.data() + static_cast<size_t>(s) * dim;
  }
  void add(int32_t r, const float* v, float scale) {
    float* dst = row(r);
    for (int j = 0; j < dim; ++j) dst[j] += scale * v[j];
  }
  void clear() {
    slot.clear();
    rows.clear();
    g.clear();
  }
};

// Every gradient of one worker's share of a batch: dense tensors by param index (empty for tables),
// sparse rows for tables.
struct Grads {
  std::vector<AlignedFloats> dense;
  std::vector<SparseRows> sparse;
  std::vector<double> head_loss;  // Σ of the weighted per-example losses (already divided by the totals)
};

// The weights of one head layer as the kernels read them: W^T (in × out) and the bias.
struct HeadLayer {
  int w = -1, b = -1;  // param indices
  int in = 0, out = 0;
  AlignedFloats wt;
};

struct Trainer::Impl {
  std::unique_ptr<Model> model;  // dimensions, tables, heads and validation (built without packed weights)
  std::vector<Param> params;
  std::vector<bool> is_table;
  std::vector<bool> is_bias;   // weight decay leaves biases alone
  std::vector<bool> stateless; // no optimizer state: never updated
  std::vector<bool> rowwise;   // a table whose optimizer state is one accumulator per row (row-wise Adagrad)
  std::vector<int> table_dim;  // row width of each table param
  std::vector<Grads> parts;    // per-worker gradients, kept between steps so warm steps reuse memory

  // Param index of each weight (-1: none, e.g. a dim-0 table).
  std::vector<int> item, profile;
  int type = -1, gap = -1, scene = -1, query = -1;
  struct Dir {
    int wx = -1, wp = -1, wh = -1, b = -1;
    AlignedFloats wxp_t;  // [(dx + dp), 4H]: pack_lstm_input's fused layout
    AlignedFloats wxp;    // [4H, (dx + dp)]: the same untransposed (backward: dX = dPre · Wxp)
    AlignedFloats wh_t;   // [H, 4H]
  } dir[2];
  int attn_w = -1, attn_b = -1, attn_v = -1;
  AlignedFloats attn_hp_t, attn_qu_t;  // pack_attention's blocks of attn.w: [(dh + dp), A] and [(dq + du), A]
  std::vector<std::vector<HeadLayer>> heads;        // retrieval: the user tower
  std::vector<std::vector<HeadLayer>> item_towers;  // retrieval: the item tower (empty for other heads)
  std::vector<int> dense_w;                          // retrieval: param of the dense weights (-1: none)

  // Sizes the packed copies, once: pack() after every step rewrites them in place.
  void allocate_packed();
  // Rewrites the packed copies from the current parameter values.
  void pack();
  // Zeroed gradient storage shaped like the parameters.
  void reset(Grads& g) const;
};

// The forward and backward pass of users [b0, b1) of a batch: adds their gradients to `g` and their
// weighted losses to g.head_loss. `totals[k]` is head k's total example weight over the whole batch (the
// loss is a weighted mean), `pair_totals[k]` its total pair weight; `cand_begin[k][b]` the first candidate
// of user b in head k.
namespace train_detail {
// Gradients of the whole batch on `threads` workers, reduced into parts[0] in worker order.
LossReport accumulate(Trainer::Impl& t, const KernelTable& k, const TrainBatch& batch, bool train_shared,
                      const Dropout& dropout, int threads, std::vector<Grads>& parts);
}  // namespace train_detail

// The dropout multiplier of (stream, row, column): 0 with probability d.rate, else 1 / (1 − rate).
float dropout_scale(const Dropout& d, uint64_t stream, uint64_t row, uint64_t col);

void backward_users(const Trainer::Impl& t, const KernelTable& k, const TrainBatch& batch, int b0, int b1,
                    const std::vector<double>& totals, const std::vector<double>& pair_totals,
                    const std::vector<std::vector<int32_t>>& cand_begin, bool train_shared, const Dropout& dropout,
                    Grads& g);

}  // namespace dupn
