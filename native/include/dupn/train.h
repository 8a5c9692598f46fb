// Training: the backward pass of the whole network, the multi-task loss and the optimizers, over the
// same dimensions and borrowed tables as a Model. Parameters and optimizer state are caller-owned
// float arrays (JavaScript keeps them, so checkpoints are plain tensors) and are updated in place.
// Plain C++17, no Node-API.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dupn/model.h"

namespace dupn {

// One trainable tensor: its values and the optimizer state beside it (Adam: m and v; Adagrad: the
// accumulator in v, m unused; row-wise Adagrad of a table: no m and one v per row, m_size 0 and
// v_size = rows; m_size = v_size = 0: no state, the param is never updated). `data` is the same array the
// ModelSpec points at.
struct Param {
  float* data = nullptr;
  float* m = nullptr;
  float* v = nullptr;
  int64_t size = 0;
  int64_t m_size = -1, v_size = -1;  // -1: the same as size
  // The param's exponential moving average (size values) that a step with `OptimizerConfig::average_rate`
  // moves towards the updated weights; null: not averaged here (hashed tables are averaged lazily by the caller).
  float* avg = nullptr;
};

// Labels of one head for a batch. Binary/rank: candidates sorted by owner (the user row they belong to),
// each with a label (binary: in [0, 1]; rank: the grade 0..4) and a weight. Multiclass: one class per
// user (-1: no label) and a weight. A head with no labels in the batch adds nothing to the loss.
struct HeadLabels {
  CandidateBatch candidates;
  const int32_t* owner = nullptr;
  const float* label = nullptr;
  const float* weight = nullptr;
  const float* offset = nullptr;     // retrieval: per candidate, subtracted from its logit (log Q); null: 0
  const int32_t* classes = nullptr;  // [B] or null
  const float* class_weight = nullptr;
  float lambda = 1.0f;    // the task weight λ_k (0: the head is not trained)
  bool pairwise = false;  // rank: add the pairwise logistic loss within each user's candidates
};

struct TrainBatch {
  UserBatch users;
  std::vector<HeadLabels> heads;  // one per model head, in head order
};

// Inverted dropout of the training forward: each value of a behaviour's input row [e_1..e_F ; p_t] and of
// the user vector U is zeroed with probability `rate` (the rest scaled by 1 / (1 − rate)). The mask is a hash
// of (seed, batch row, column), so it does not depend on the thread count; pass a new seed every step.
struct Dropout {
  float rate = 0.0f;  // in [0, 1)
  uint64_t seed = 0;
};

struct OptimizerConfig {
  float lr = 1e-3f;            // dense Adam step (already warmed up / decayed for this step)
  float embedding_lr = 1e-3f;  // embedding rows
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  bool embedding_adagrad = false;  // false: lazy (row-wise) Adam
  float clip_norm = 0.0f;          // global L2 norm of the whole gradient; 0: no clipping
  bool train_shared = true;        // false: embeddings, LSTM and attention stay fixed (heads only)
  int64_t step = 1;                // 1-based Adam step for bias correction
  std::vector<bool> frozen;        // per param: never updated (empty: none)
  // Decoupled weight decay (AdamW): each update also moves a weight by −lr · weight_decay · w. Dense
  // weights every step (biases excepted), embedding rows when a batch touches them (lazily, like Adam).
  float weight_decay = 0.0f;
  Dropout dropout;
  // After the update, every param with an `avg` gets avg ← avg + average_rate · (w − avg), in double and
  // rounded once, as JavaScript computes it (so moving it here changed no bit); 0: no averaging this step.
  double average_rate = 0.0;
};

// Grade weights of the point-wise rank loss (docs/model.md, Training loss: buy > cart > fav > click > none).
constexpr float kGradeWeight[5] = {1.0f, 1.0f, 2.0f, 3.0f, 5.0f};

struct LossReport {
  double loss = 0.0;                 // Σ_k λ_k · loss_k
  std::vector<double> head_loss;     // loss_k: the weighted mean over the labelled examples of head k
  std::vector<double> head_weight;   // Σ of the example weights of head k (0: no labels)
  double grad_norm = 0.0;            // before clipping
};

class Trainer {
 public:
  // `params` covers every non-empty tensor of the spec, matched by its data pointer; returns null with
  // *error set when one is missing or has the wrong size.
  static std::unique_ptr<Trainer> create(const ModelSpec& spec, const std::vector<Param>& params, std::string* error);
  ~Trainer();

  // Checks a batch (every id, owner, label, class) against the model; "" when valid, else the problem.
  std::string validate(const TrainBatch& batch) const;

  // Forward, backward and one optimizer update. Deterministic for a given `threads`.
  LossReport step(const KernelTable& k, const TrainBatch& batch, const OptimizerConfig& opt, int threads);

  // The loss and its exact gradient (no clipping, no update), written densely into grads[i] (the size of
  // params[i]) — for gradient checks and tools.
  // `dropout` as in a step (rate 0: none), so a test can check the masked network's gradient too.
  LossReport gradients(const KernelTable& k, const TrainBatch& batch, float* const* grads, int threads,
                       const Dropout& dropout = {});

  // The dimensions, tables and heads that batches are checked against; built without packed weights, so
  // not a model to encode or score with.
  const Model& model() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace dupn
