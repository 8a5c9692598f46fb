// One optimizer update after the gradients of a batch: global-norm clipping, Adam for dense weights,
// and for embedding tables only the rows the batch touched (lazy Adam — the moments of an untouched row
// wait until it is seen again, as in TensorFlow's LazyAdam — or Adagrad); optional decoupled weight decay.
#include <cmath>

#include "dupn/thread_pool.h"
#include "trainer_impl.h"

namespace dupn {
namespace {

struct Adam {
  float lr, b1, b2, eps, c1, c2;  // c1, c2: bias corrections 1 − β^t
  void update(float* p, float* m, float* v, const float* g, int64_t n, float scale) const {
    for (int64_t i = 0; i < n; ++i) {
      const float gi = g[i] * scale;
      m[i] = b1 * m[i] + (1.0f - b1) * gi;
      v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
      p[i] -= lr * (m[i] / c1) / (std::sqrt(v[i] / c2) + eps);
    }
  }
};

// Adagrad: v accumulates squared gradients (the caller starts it at a small positive value).
void adagrad(float lr, float eps, float* p, float* v, const float* g, int n, float scale) {
  for (int i = 0; i < n; ++i) {
    const float gi = g[i] * scale;
    v[i] += gi * gi;
    p[i] -= lr * gi / (std::sqrt(v[i]) + eps);
  }
}

// Row-wise Adagrad (as large-table trainers keep it): one accumulator per row, of the mean squared gradient.
void rowwise_adagrad(float lr, float eps, float* p, float* v_row, const float* g, int n, float scale) {
  double sq = 0.0;
  for (int i = 0; i < n; ++i) sq += static_cast<double>(g[i] * scale) * (g[i] * scale);
  *v_row += static_cast<float>(sq / n);
  const float step = lr / (std::sqrt(*v_row) + eps);
  for (int i = 0; i < n; ++i) p[i] -= step * g[i] * scale;
}

// Decoupled weight decay: w ← w − rate · w, applied before the gradient step (as AdamW does).
void decay(float* p, int64_t n, float rate) {
  const float keep = 1.0f - rate;
  for (int64_t i = 0; i < n; ++i) p[i] *= keep;
}

// One step of an exponential moving average, in double as the trainer's JavaScript computed it before.
void average(float* avg, const float* w, int64_t n, double rate) {
  for (int64_t i = 0; i < n; ++i) {
    const double a = avg[i];
    avg[i] = static_cast<float>(a + rate * (static_cast<double>(w[i]) - a));
  }
}

}  // namespace

LossReport Trainer::step(const KernelTable& k, const TrainBatch& batch, const OptimizerConfig& opt, int threads) {
  Impl& t = *impl_;
  LossReport r = train_detail::accumulate(t, k, batch, opt.train_shared, opt.dropout, threads, t.parts);
  if (!std::isfinite(r.loss) || !std::isfinite(r.grad_norm)) return r;  // the caller reports it; weights stay as they were
  const float scale = opt.clip_norm > 0 && r.grad_norm > opt.clip_norm ? static_cast<float>(opt.clip_norm / r.grad_norm) : 1.0f;
  const double t1 = static_cast<double>(opt.step);
  const Adam dense{opt.lr, opt.beta1, opt.beta2, opt.eps, static_cast<float>(1.0 - std::pow(opt.beta1, t1)),
                   static_cast<float>(1.0 - std::pow(opt.beta2, t1))};
  Adam rows = dense;
  rows.lr = opt.embedding_lr;

  // Which params this step may change: heads with a positive λ, the shared network when it trains.
  std::vector<bool> trainable(t.params.size(), opt.train_shared);
  for (size_t h = 0; h < t.heads.size(); ++h) {
    const bool on = batch.heads[h].lambda > 0.0f;
    for (const auto* stack : {&t.heads[h], &t.item_towers[h]})
      for (const HeadLayer& l : *stack) trainable[l.w] = trainable[l.b] = on;
    if (t.dense_w[h] >= 0) trainable[t.dense_w[h]] = on;
  }

  const Grads& g = t.parts[0];
  // The params one by one on the step's threads: each param's update reads and writes only its own buffers, so
  // the bits do not depend on which thread takes it (it was 5% of a 2-thread step on one thread).
  parallel_for(static_cast<int>(t.params.size()), threads, [&](int, int item) {
    const size_t i = static_cast<size_t>(item);
    if (!trainable[i] || t.stateless[i] || (i < opt.frozen.size() && opt.frozen[i])) return;
    Param& p = t.params[i];
    if (!t.is_table[i]) {
      if (opt.weight_decay > 0 && !t.is_bias[i]) decay(p.data, p.size, dense.lr * opt.weight_decay);
      dense.update(p.data, p.m, p.v, g.dense[i].data(), p.size, scale);
      return;
    }
    const SparseRows& s = g.sparse[i];
    for (size_t r2 = 0; r2 < s.rows.size(); ++r2) {
      const int64_t at = static_cast<int64_t>(s.rows[r2]) * s.dim;
      const float* gr = s.g.data() + r2 * s.dim;
      if (opt.weight_decay > 0) decay(p.data + at, s.dim, opt.embedding_lr * opt.weight_decay);
      if (t.rowwise[i]) rowwise_adagrad(opt.embedding_lr, opt.eps, p.data + at, p.v + s.rows[r2], gr, s.dim, scale);
      else if (opt.embedding_adagrad) adagrad(opt.embedding_lr, opt.eps, p.data + at, p.v + at, gr, s.dim, scale);
      else rows.update(p.data + at, p.m + at, p.v + at, gr, s.dim, scale);
    }
  });
  if (opt.average_rate > 0)
    parallel_for(static_cast<int>(t.params.size()), threads, [&](int, int i) {
      const Param& p = t.params[static_cast<size_t>(i)];
      if (p.avg) average(p.avg, p.data, p.size, opt.average_rate);
    });
  t.pack();
  return r;
}

}  // namespace dupn
