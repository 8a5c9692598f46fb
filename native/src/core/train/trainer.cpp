// The Trainer: parameter roles, batch validation, and the step: per-worker gradients over a fixed split
// of the batch (so a given thread count always sums in the same order), one reduction, global-norm
// clipping, then Adam for dense weights and lazy Adam or Adagrad for the embedding rows a batch touched.
#include <cmath>
#include <cstring>
#include <unordered_map>

#include "../pack.h"
#include "dupn/thread_pool.h"
#include "trainer_impl.h"

namespace dupn {
namespace {

constexpr int kChunkUsers = 16;

}  // namespace

void Trainer::Impl::allocate_packed() {
  const Model& m = *model;
  const size_t G = 4 * static_cast<size_t>(m.hidden), K = m.dx + m.dp, A = m.attention_hidden;
  for (int d = 0; d < m.directions; ++d) {
    dir[d].wxp_t.resize(K * G);
    dir[d].wxp.resize(G * K);
    dir[d].wh_t.resize(static_cast<size_t>(m.hidden) * G);
  }
  attn_hp_t.resize((m.dh + m.dp) * A);
  attn_qu_t.resize((m.dq + m.du) * A);
  for (auto* stack : {&heads, &item_towers})
    for (auto& layers : *stack)
      for (HeadLayer& l : layers) l.wt.resize(static_cast<size_t>(l.in) * l.out);
}

void Trainer::Impl::pack() {
  const Model& m = *model;
  const int H = m.hidden, G = 4 * H, K = m.dx + m.dp;
  for (int d = 0; d < m.directions; ++d) {
    Dir& dr = dir[d];
    pack_lstm_input(params[dr.wx].data, m.dp > 0 ? params[dr.wp].data : nullptr, H, m.dx, m.dp, dr.wxp_t.data());
    transpose(dr.wxp_t.data(), K, G, dr.wxp.data());
    transpose(params[dr.wh].data, G, H, dr.wh_t.data());
  }
  pack_attention(params[attn_w].data, m.attention_hidden, m.dh, m.dq, m.du, m.dp, attn_hp_t.data(), attn_qu_t.data());
  for (auto* stack : {&heads, &item_towers})
    for (auto& layers : *stack)
      for (HeadLayer& l : layers) transpose(params[l.w].data, l.out, l.in, l.wt.data());
}

void Trainer::Impl::reset(Grads& g) const {
  g.dense.resize(params.size());
  g.sparse.resize(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    if (is_table[i]) {
      g.sparse[i].clear();
      g.sparse[i].dim = table_dim[i];
      g.dense[i].clear();
    } else if (stateless[i]) {
      g.dense[i].clear();
    } else {
      g.dense[i].assign(static_cast<size_t>(params[i].size), 0.0f);
    }
  }
  g.head_loss.assign(model->heads.size(), 0.0);
}

std::unique_ptr<Trainer> Trainer::create(const ModelSpec& s, const std::vector<Param>& params, std::string* error) {
  auto impl = std::make_unique<Impl>();
  impl->model = Model::build(s, error, Model::Weights::CheckOnly);
  if (!impl->model) return nullptr;
  impl->params = params;
  impl->is_table.assign(params.size(), false);
  impl->is_bias.assign(params.size(), false);
  impl->table_dim.assign(params.size(), 0);
  std::unordered_map<const float*, int> by_ptr;
  for (size_t i = 0; i < params.size(); ++i) {
    Param& p = impl->params[i];
    if (p.m_size < 0) p.m_size = p.size;
    if (p.v_size < 0) p.v_size = p.size;
    const bool stateless = p.m_size == 0 && p.v_size == 0;
    if (!p.data || p.size <= 0 || (!stateless && !p.v) || (p.m_size > 0 && !p.m)) {
      *error = "param " + std::to_string(i) + ": missing data or optimizer state";
      return nullptr;
    }
    by_ptr[p.data] = static_cast<int>(i);
  }
  // Finds the param behind a weight pointer of `size` values; -1 when the weight is empty.
  bool ok = true;
  auto find = [&](const float* p, int64_t size, const std::string& what, bool table) {
    if (size == 0) return -1;
    auto it = by_ptr.find(p);
    if (it == by_ptr.end() || impl->params[it->second].size != size) {
      if (ok) *error = what + ": no trainable parameter of " + std::to_string(size) + " values";
      ok = false;
      return -1;
    }
    if (table) impl->is_table[it->second] = true;
    return it->second;
  };
  const Model& m = *impl->model;
  auto table = [&](const Table& t, const std::string& what) {
    // A step writes rows of any id: a sparse table (no row for most ids) cannot be trained in place.
    if (t.keys != nullptr) {
      if (ok) *error = what + ": a sparse table cannot be trained (expand it to all its rows first)";
      ok = false;
      return -1;
    }
    const int i = find(t.data, t.rows * t.dim, what, true);
    if (i >= 0) impl->table_dim[i] = t.dim;
    return i;
  };
  for (size_t f = 0; f < s.item_tables.size(); ++f) impl->item.push_back(table(s.item_tables[f], "item table " + std::to_string(f)));
  for (size_t f = 0; f < s.profile_tables.size(); ++f)
    impl->profile.push_back(table(s.profile_tables[f], "profile table " + std::to_string(f)));
  impl->type = table(s.type_table, "type table");
  impl->gap = table(s.gap_table, "gap table");
  impl->scene = table(s.scene_table, "scene table");
  impl->query = table(s.query_table, "query table");
  const int64_t H = m.hidden, G = 4 * H;
  for (int d = 0; d < m.directions; ++d) {
    const std::string what = "lstm " + std::to_string(d);
    impl->dir[d].wx = find(s.lstm[d].wx, G * m.dx, what + " wx", false);
    impl->dir[d].wp = find(s.lstm[d].wp, 3 * H * m.dp, what + " wp", false);
    impl->dir[d].wh = find(s.lstm[d].wh, G * H, what + " wh", false);
    impl->dir[d].b = find(s.lstm[d].b, G, what + " b", false);
    if (impl->dir[d].b >= 0) impl->is_bias[impl->dir[d].b] = true;
  }
  const int64_t A = m.attention_hidden;
  impl->attn_w = find(s.attn_w, A * (m.dh + m.dq + m.du + m.dp), "attn.w", false);
  impl->attn_b = find(s.attn_b, A, "attn.b", false);
  if (impl->attn_b >= 0) impl->is_bias[impl->attn_b] = true;
  impl->attn_v = find(s.attn_v, A, "attn.v", false);
  auto stack = [&](const std::vector<DenseIn>& in, const std::string& what) {
    std::vector<HeadLayer> layers;
    for (size_t l = 0; l < in.size(); ++l) {
      const DenseIn& d = in[l];
      HeadLayer hl;
      hl.in = d.in;
      hl.out = d.out;
      hl.w = find(d.w, static_cast<int64_t>(d.out) * d.in, what + " layer " + std::to_string(l) + " w", false);
      hl.b = find(d.b, d.out, what + " layer " + std::to_string(l) + " b", false);
      if (hl.b >= 0) impl->is_bias[hl.b] = true;
      layers.push_back(std::move(hl));
    }
    return layers;
  };
  for (size_t h = 0; h < s.heads.size(); ++h) {
    const std::string what = "head " + std::to_string(h);
    impl->heads.push_back(stack(s.heads[h].layers, what));
    impl->item_towers.push_back(stack(s.heads[h].item_layers, what + " item tower"));
    const bool dense_term = s.heads[h].kind == TaskKind::Retrieval && m.heads[h].dense > 0;
    impl->dense_w.push_back(dense_term ? find(s.heads[h].dense_w, m.heads[h].dense, what + " dense weights", false) : -1);
  }
  if (!ok) return nullptr;
  // Optimizer state: full m and v for every param, one v per row (and no m) for a table, or none at all for a
  // param that is never updated (a statistic such as the prior: its state would only fill checkpoints).
  impl->rowwise.assign(impl->params.size(), false);
  impl->stateless.assign(impl->params.size(), false);
  for (size_t i = 0; i < impl->params.size(); ++i) {
    const Param& p = impl->params[i];
    if (p.m_size == p.size && p.v_size == p.size) continue;
    if (p.m_size == 0 && p.v_size == 0) {
      impl->stateless[i] = true;
      continue;
    }
    const int dim = impl->table_dim[i];
    if (impl->is_table[i] && dim > 0 && p.m_size == 0 && p.v_size * dim == p.size) {
      impl->rowwise[i] = true;
      continue;
    }
    *error = "param " + std::to_string(i) + ": optimizer state must match the data, be one value per row of a table, or be empty";
    return nullptr;
  }
  // A param without state is a statistic: no gradient reaches it, so a step keeps no gradient buffer for it
  // (the prior alone is one float per bucket: zeroing and summing it cost a millisecond per step). One that the
  // backward pass writes must have state.
  std::vector<int> written = {impl->attn_w, impl->attn_b, impl->attn_v};
  for (int d = 0; d < m.directions; ++d) written.insert(written.end(), {impl->dir[d].wx, impl->dir[d].wp, impl->dir[d].wh, impl->dir[d].b});
  for (const auto* stacks : {&impl->heads, &impl->item_towers})
    for (const auto& layers : *stacks)
      for (const HeadLayer& l : layers) written.insert(written.end(), {l.w, l.b});
  written.insert(written.end(), impl->dense_w.begin(), impl->dense_w.end());
  for (int i : written)
    if (i >= 0 && impl->stateless[i]) {
      *error = "param " + std::to_string(i) + ": trained by the backward pass, so it needs optimizer state";
      return nullptr;
    }
  impl->allocate_packed();
  impl->pack();
  std::unique_ptr<Trainer> t(new Trainer());
  t->impl_ = std::move(impl);
  return t;
}

Trainer::~Trainer() = default;

const Model& Trainer::model() const { return *impl_->model; }

std::string Trainer::validate(const TrainBatch& batch) const {
  const Model& m = *impl_->model;
  std::string e = validate_users(m, batch.users);
  if (!e.empty()) return "users." + e;
  if (batch.heads.size() != m.heads.size()) return "heads: expected one entry per model head";
  const int B = batch.users.batch;
  for (size_t h = 0; h < m.heads.size(); ++h) {
    const Head& head = m.heads[h];
    const HeadLabels& lab = batch.heads[h];
    const std::string at = "heads[" + std::to_string(h) + "].";
    if (!(lab.lambda >= 0.0f) || !std::isfinite(lab.lambda)) return at + "lambda: must be a finite number ≥ 0";
    if (head.kind == TaskKind::Multiclass) {
      if (!lab.classes) continue;
      for (int b = 0; b < B; ++b) {
        if (lab.classes[b] < -1 || lab.classes[b] >= head.outputs)
          return at + "classes[" + std::to_string(b) + "] = " + std::to_string(lab.classes[b]) + " is outside -1.." + std::to_string(head.outputs - 1);
        const float w = lab.class_weight[b];
        if (!(w >= 0.0f) || !std::isfinite(w)) return at + "classWeight[" + std::to_string(b) + "] must be a finite number ≥ 0";
      }
      continue;
    }
    const int C = lab.candidates.count;
    if (C == 0) continue;
    e = validate_candidates(m, head, lab.candidates);
    if (!e.empty()) return at + "candidates." + e;
    for (int c = 0; c < C; ++c) {
      const int32_t o = lab.owner[c];
      if (o < 0 || o >= B) return at + "owner[" + std::to_string(c) + "] = " + std::to_string(o) + " is outside 0.." + std::to_string(B - 1);
      if (c > 0 && o < lab.owner[c - 1]) return at + "owner[" + std::to_string(c) + "]: candidates must be sorted by owner";
      const float y = lab.label[c], w = lab.weight[c];
      if (head.kind == TaskKind::Rank) {
        if (!(y >= 0.0f && y <= 4.0f) || y != std::floor(y)) return at + "label[" + std::to_string(c) + "]: a rank grade must be an integer 0..4";
      } else if (!(y >= 0.0f && y <= 1.0f)) {
        return at + "label[" + std::to_string(c) + "]: a binary label must be in [0, 1]";
      }
      if (lab.offset && !std::isfinite(lab.offset[c])) return at + "offset[" + std::to_string(c) + "] must be a finite number";
      if (!(w >= 0.0f) || !std::isfinite(w)) return at + "weight[" + std::to_string(c) + "] must be a finite number ≥ 0";
    }
  }
  return "";
}

namespace train_detail {

struct Plan {
  std::vector<double> totals, pair_totals;
  std::vector<std::vector<int32_t>> cand_begin;
};

Plan plan(const Model& m, const TrainBatch& batch) {
  Plan p;
  const int B = batch.users.batch;
  p.totals.assign(m.heads.size(), 0.0);
  p.pair_totals.assign(m.heads.size(), 0.0);
  p.cand_begin.assign(m.heads.size(), std::vector<int32_t>(static_cast<size_t>(B) + 1, 0));
  for (size_t h = 0; h < m.heads.size(); ++h) {
    const HeadLabels& lab = batch.heads[h];
    if (m.heads[h].kind == TaskKind::Multiclass) {
      if (lab.classes)
        for (int b = 0; b < B; ++b)
          if (lab.classes[b] >= 0) p.totals[h] += lab.class_weight[b];
      continue;
    }
    const int C = lab.candidates.count;
    std::vector<int32_t>& begin = p.cand_begin[h];
    for (int c = 0; c < C; ++c) begin[lab.owner[c] + 1]++;
    for (int b = 0; b < B; ++b) begin[b + 1] += begin[b];
    const bool rank = m.heads[h].kind == TaskKind::Rank;
    for (int c = 0; c < C; ++c)
      p.totals[h] += static_cast<double>(lab.weight[c]) *
                     (rank ? kGradeWeight[static_cast<int>(lab.label[c])] : m.heads[h].kind == TaskKind::Retrieval ? lab.label[c] : 1.0f);
    if (rank && lab.pairwise)
      for (int b = 0; b < B; ++b)
        for (int x = begin[b]; x < begin[b + 1]; ++x)
          for (int y = begin[b]; y < begin[b + 1]; ++y)
            if (lab.label[x] > lab.label[y]) p.pair_totals[h] += 0.5 * (static_cast<double>(lab.weight[x]) + lab.weight[y]);
  }
  return p;
}

// Per-worker gradients of the batch, reduced into parts[0] in worker order.
LossReport accumulate(Trainer::Impl& t, const KernelTable& k, const TrainBatch& batch, bool train_shared,
                      const Dropout& dropout, int threads, std::vector<Grads>& parts) {
  const Model& m = *t.model;
  const Plan p = plan(m, batch);
  const int B = batch.users.batch;
  const int workers = std::max(1, std::min(threads, (B + kChunkUsers - 1) / kChunkUsers));
  parts.resize(workers);
  for (Grads& g : parts) t.reset(g);
  // Each worker takes a run of users with about the same work (their steps and candidates by FLOPs, not their
  // count): with lengths and candidate lists that vary, equal counts left one of two workers 5–20 ms idle of
  // 130. The split depends only on the batch, so a thread count gives the same bits run after run.
  std::vector<int> bound(static_cast<size_t>(workers) + 1, B);
  bound[0] = 0;
  if (workers > 1) {
    const double per_step = 2.0 * m.directions * 4.0 * m.hidden * (m.dx + m.dp + m.hidden);
    std::vector<double> cost(static_cast<size_t>(B) + 1, 0.0);
    for (int b = 0; b < B; ++b) {
      double c = per_step * batch.users.lengths[b];
      for (size_t h = 0; h < m.heads.size(); ++h) {
        const Head& head = m.heads[h];
        if (head.kind == TaskKind::Multiclass) continue;
        const double W = head.first_user.out;
        c += (p.cand_begin[h][b + 1] - p.cand_begin[h][b]) * 2.0 * W * (head.target_dim + W);
      }
      cost[b + 1] = cost[b] + c;
    }
    for (int w = 1, b = 0; w < workers; ++w) {
      while (b < B && cost[b] < cost[B] * w / workers) ++b;
      bound[w] = b;
    }
  }
  parallel_for(workers, workers, [&](int, int part) {
    const int from = bound[part], to = bound[part + 1];
    for (int b = from; b < to; b += kChunkUsers)
      backward_users(t, k, batch, b, std::min(to, b + kChunkUsers), p.totals, p.pair_totals, p.cand_begin, train_shared,
                     dropout, parts[part]);
  });
  Grads& g = parts[0];
  // Param by param on the threads, each summing the workers in order: the same sums as a serial loop.
  if (workers > 1)
    parallel_for(static_cast<int>(t.params.size()), threads, [&](int, int item) {
      const size_t i = static_cast<size_t>(item);
      for (int w = 1; w < workers; ++w) {
        if (t.is_table[i]) {
          SparseRows& src = parts[w].sparse[i];
          for (size_t r = 0; r < src.rows.size(); ++r) g.sparse[i].add(src.rows[r], src.g.data() + r * src.dim, 1.0f);
        } else if (!t.stateless[i]) {
          float* dst = g.dense[i].data();
          const float* src = parts[w].dense[i].data();
          for (int64_t j = 0; j < t.params[i].size; ++j) dst[j] += src[j];
        }
      }
    });
  for (int w = 1; w < workers; ++w)
    for (size_t h = 0; h < g.head_loss.size(); ++h) g.head_loss[h] += parts[w].head_loss[h];
  LossReport r;
  r.head_loss = g.head_loss;
  r.head_weight = p.totals;
  for (size_t h = 0; h < m.heads.size(); ++h)
    if (p.totals[h] > 0) r.loss += batch.heads[h].lambda * g.head_loss[h];
  double sq = 0.0;
  for (size_t i = 0; i < t.params.size(); ++i) {
    const AlignedFloats& v = t.is_table[i] ? g.sparse[i].g : g.dense[i];
    for (float x : v) sq += static_cast<double>(x) * x;
  }
  r.grad_norm = std::sqrt(sq);
  return r;
}

}  // namespace train_detail

float dropout_scale(const Dropout& d, uint64_t stream, uint64_t row, uint64_t col) {
  // splitmix64 of the coordinates: a counter-based stream, so any worker draws any value.
  uint64_t z = d.seed ^ (stream * 0x9E3779B97F4A7C15ull) ^ (row * 0xD1B54A32D192ED03ull) ^ (col * 0x8CB92BA72F3D8DD7ull);
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  const float u = static_cast<float>(z >> 40) * (1.0f / 16777216.0f);
  return u < d.rate ? 0.0f : 1.0f / (1.0f - d.rate);
}

LossReport Trainer::gradients(const KernelTable& k, const TrainBatch& batch, float* const* grads, int threads,
                              const Dropout& dropout) {
  Impl& t = *impl_;
  LossReport r = train_detail::accumulate(t, k, batch, true, dropout, threads, t.parts);
  const Grads& g = t.parts[0];
  for (size_t i = 0; i < t.params.size(); ++i) {
    float* out = grads[i];
    if (!t.is_table[i]) {
      if (t.stateless[i]) std::memset(out, 0, static_cast<size_t>(t.params[i].size) * sizeof(float));
      else std::memcpy(out, g.dense[i].data(), static_cast<size_t>(t.params[i].size) * sizeof(float));
      continue;
    }
    std::memset(out, 0, static_cast<size_t>(t.params[i].size) * sizeof(float));
    const SparseRows& s = g.sparse[i];
    for (size_t r2 = 0; r2 < s.rows.size(); ++r2)
      for (int j = 0; j < s.dim; ++j) out[static_cast<int64_t>(s.rows[r2]) * s.dim + j] += s.g[r2 * s.dim + j];
  }
  return r;
}

}  // namespace dupn
