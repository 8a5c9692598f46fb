// The training pass of a chunk of users: the forward of docs/model.md keeping what the backward needs (gates,
// cells, tanh(c), H_t, attention), the heads and their losses, then back through attention and both LSTM
// directions over each user's own steps (no padding), down to sparse embedding-row gradients.
// Matrix products go through the kernel table's sgemm (weights packed by Impl::pack); the recurrence
// runs one product per step over the still-active users, sorted by length like the serving encoder.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "../pack.h"
#include "head_backward.h"
#include "trainer_impl.h"

namespace dupn {
namespace {

struct Scratch {
  AlignedFloats x, hs, za, zin, dzin, dhs, dx, uvec, duvec, q, prof, hprev, dpre, dpre_t, dw, dstep, zstep;
  AlignedFloats gates[2], cs[2], tcs[2];
  AlignedFloats hstate, cstate, dh_carry, dc_carry, zeros, x0, dlogit, aw;
  std::vector<int> order, rowoff;
  HeadScratch head, item_head;
  AlignedFloats dvec, duser, qu_row, qu_in;
  AlignedFloats xmask, umask;  // dropout multipliers of the input rows and of U
  std::vector<double> logits;
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

float* zeroed(AlignedFloats& v, size_t n) {
  float* p = grow(v, n);
  std::memset(p, 0, n * sizeof(float));
  return p;
}

class ChunkPass {
 public:
  ChunkPass(const Trainer::Impl& t, const KernelTable& k, const TrainBatch& batch, int b0, int b1, const Dropout& dropout,
            Grads& g)
      : t_(t), m_(*t.model), k_(k), in_(batch.users), batch_(batch), b0_(b0), nb_(b1 - b0), drop_(dropout), g_(g), s_(scratch()) {
    H_ = m_.hidden;
    G_ = 4 * H_;
    K_ = m_.dx + m_.dp;
    A_ = m_.attention_hidden;
    attn_in_ = m_.dh + m_.dq + m_.du + m_.dp;
    base_ = 0;
    for (int b = 0; b < b0; ++b) base_ += in_.lengths[b];
    s_.rowoff.assign(static_cast<size_t>(nb_) + 1, 0);
    max_len_ = 0;
    for (int i = 0; i < nb_; ++i) {
      s_.rowoff[i + 1] = s_.rowoff[i] + in_.lengths[b0 + i];
      max_len_ = std::max(max_len_, in_.lengths[b0 + i]);
    }
    n_ = s_.rowoff[nb_];
    s_.order.resize(nb_);
    std::iota(s_.order.begin(), s_.order.end(), 0);
    std::stable_sort(s_.order.begin(), s_.order.end(), [&](int a, int b) { return in_.lengths[b0 + a] > in_.lengths[b0 + b]; });
  }

  void forward() {
    gather();
    if (drop_.rate > 0) drop_inputs();
    for (int d = 0; d < m_.directions; ++d) lstm_forward(d);
    attention_forward();
    if (drop_.rate > 0) drop_user();
  }

  // Heads, losses and dU; returns whether any head produced a gradient.
  void heads(const std::vector<double>& totals, const std::vector<double>& pair_totals,
             const std::vector<std::vector<int32_t>>& cand_begin, bool train_shared) {
    float* du = zeroed(s_.duvec, static_cast<size_t>(nb_) * m_.user_dim);
    for (size_t h = 0; h < batch_.heads.size(); ++h) {
      const HeadLabels& lab = batch_.heads[h];
      if (lab.lambda == 0.0f || totals[h] <= 0.0) continue;
      if (m_.heads[h].kind == TaskKind::Multiclass) multiclass(static_cast<int>(h), lab, totals[h], train_shared, du);
      else if (m_.heads[h].kind == TaskKind::Retrieval) retrieval(static_cast<int>(h), lab, totals[h], cand_begin[h], train_shared, du);
      else candidates(static_cast<int>(h), lab, totals[h], pair_totals[h], cand_begin[h], train_shared, du);
    }
  }

  void backward() {
    if (drop_.rate > 0) multiply(s_.duvec.data(), s_.umask.data(), static_cast<size_t>(nb_) * m_.user_dim);
    float* dx = zeroed(s_.dx, static_cast<size_t>(n_) * K_);
    attention_backward(dx);
    for (int d = 0; d < m_.directions && n_ > 0; ++d) lstm_backward(d, dx);
    if (drop_.rate > 0) multiply(dx, s_.xmask.data(), static_cast<size_t>(n_) * K_);
    scatter(dx);
  }

 private:
  int64_t gn(int n) const { return base_ + n; }  // batch row of chunk row n
  int len(int i) const { return in_.lengths[b0_ + i]; }

  void gather() {
    float* x = grow(s_.x, static_cast<size_t>(std::max(n_, 1)) * K_);
    const int F = m_.item_fields();
    for (int n = 0; n < n_; ++n) {
      float* row = x + static_cast<size_t>(n) * K_;
      int at = 0;
      for (int f = 0; f < F; ++f) {
        const Table& tab = m_.item_tables[f];
        if (tab.dim == 0) continue;
        std::memcpy(row + at, tab.data + static_cast<int64_t>(in_.items[gn(n) * F + f]) * tab.dim, tab.dim * sizeof(float));
        at += tab.dim;
      }
      const Table* props[3] = {&m_.type_table, &m_.gap_table, &m_.scene_table};
      for (int p = 0; p < 3; ++p) {
        if (props[p]->dim == 0) continue;
        std::memcpy(row + at, props[p]->data + static_cast<int64_t>(in_.properties[gn(n) * 3 + p]) * props[p]->dim,
                    props[p]->dim * sizeof(float));
        at += props[p]->dim;
      }
    }
    // q (mean of query-token rows) and u (profile rows) per user.
    float* q = zeroed(s_.q, static_cast<size_t>(nb_) * std::max(m_.dq, 1));
    float* u = zeroed(s_.prof, static_cast<size_t>(nb_) * std::max(m_.du, 1));
    for (int i = 0; i < nb_; ++i) {
      const int b = b0_ + i;
      if (m_.dq > 0) {
        const int32_t from = in_.query_offsets[b], to = in_.query_offsets[b + 1];
        for (int32_t tk = from; tk < to; ++tk) {
          const float* row = m_.query_table.data + static_cast<int64_t>(in_.query_tokens[tk]) * m_.dq;
          for (int j = 0; j < m_.dq; ++j) q[static_cast<size_t>(i) * m_.dq + j] += row[j];
        }
        if (to > from)
          for (int j = 0; j < m_.dq; ++j) q[static_cast<size_t>(i) * m_.dq + j] /= static_cast<float>(to - from);
      }
      int at = 0;
      for (int f = 0; f < m_.profile_fields(); ++f) {
        const Table& tab = m_.profile_tables[f];
        if (tab.dim == 0) continue;
        std::memcpy(u + static_cast<size_t>(i) * m_.du + at,
                    tab.data + static_cast<int64_t>(in_.profile[static_cast<int64_t>(b) * m_.profile_fields() + f]) * tab.dim,
                    tab.dim * sizeof(float));
        at += tab.dim;
      }
    }
  }

  // Dropout streams: 1 for the input rows (row = the batch's behaviour row), 2 for U (row = the batch's user).
  void drop_inputs() {
    float* mask = grow(s_.xmask, static_cast<size_t>(std::max(n_, 1)) * K_);
    for (int n = 0; n < n_; ++n)
      for (int c = 0; c < K_; ++c) mask[static_cast<size_t>(n) * K_ + c] = dropout_scale(drop_, 1, static_cast<uint64_t>(gn(n)), c);
    multiply(s_.x.data(), mask, static_cast<size_t>(n_) * K_);
  }

  void drop_user() {
    const int UD = m_.user_dim;
    float* mask = grow(s_.umask, static_cast<size_t>(std::max(nb_, 1)) * UD);
    for (int i = 0; i < nb_; ++i)
      for (int c = 0; c < UD; ++c) mask[static_cast<size_t>(i) * UD + c] = dropout_scale(drop_, 2, static_cast<uint64_t>(b0_ + i), c);
    multiply(s_.uvec.data(), mask, static_cast<size_t>(nb_) * UD);
  }

  static void multiply(float* v, const float* mask, size_t n) {
    for (size_t i = 0; i < n; ++i) v[i] *= mask[i];
  }

  // Chunk row of user i's step processed s-th by direction d.
  int row_of(int i, int d, int s) const { return s_.rowoff[i] + (d == 0 ? s : len(i) - 1 - s); }

  void lstm_forward(int d) {
    const Trainer::Impl::Dir& dir = t_.dir[d];
    const size_t rows = static_cast<size_t>(std::max(n_, 1));
    float* gates = grow(s_.gates[d], rows * G_);
    float* cs = grow(s_.cs[d], rows * H_);
    float* tcs = grow(s_.tcs[d], rows * H_);
    float* hs = grow(s_.hs, rows * m_.dh);
    if (n_ == 0) return;
    const float* b = t_.params[dir.b].data;
    k_.sgemm(n_, G_, K_, s_.x.data(), K_, dir.wxp_t.data(), gates, G_, false, b);
    float* hstate = zeroed(s_.hstate, static_cast<size_t>(nb_) * H_);
    float* cstate = zeroed(s_.cstate, static_cast<size_t>(nb_) * H_);
    float* z = grow(s_.zstep, static_cast<size_t>(nb_) * G_);
    int M = nb_;
    for (int s = 0; s < max_len_; ++s) {
      while (M > 0 && len(s_.order[M - 1]) <= s) --M;
      if (s > 0) k_.sgemm(M, G_, H_, hstate, H_, dir.wh_t.data(), z, G_, false, nullptr);
      for (int r = 0; r < M; ++r) {
        const int n = row_of(s_.order[r], d, s);
        float* pre = gates + static_cast<size_t>(n) * G_;
        if (s > 0)
          for (int j = 0; j < G_; ++j) pre[j] += z[static_cast<size_t>(r) * G_ + j];
        float* h = hs + static_cast<size_t>(n) * m_.dh + d * H_;
        k_.lstm_cell_train(H_, pre, cstate + static_cast<size_t>(r) * H_, cs + static_cast<size_t>(n) * H_,
                           tcs + static_cast<size_t>(n) * H_, h);
        std::memcpy(cstate + static_cast<size_t>(r) * H_, cs + static_cast<size_t>(n) * H_, H_ * sizeof(float));
        std::memcpy(hstate + static_cast<size_t>(r) * H_, h, H_ * sizeof(float));
      }
    }
  }

  void attention_forward() {
    const size_t rows = static_cast<size_t>(std::max(n_, 1));
    float* za = grow(s_.za, rows * A_);
    float* aw = grow(s_.aw, rows);
    float* uvec = zeroed(s_.uvec, static_cast<size_t>(nb_) * m_.user_dim);
    const float* ab = t_.params[t_.attn_b].data;
    const float* av = t_.params[t_.attn_v].data;
    float* qu_row = grow(s_.qu_row, static_cast<size_t>(A_));
    float* qu_in = grow(s_.qu_in, static_cast<size_t>(std::max(m_.dq + m_.du, 1)));
    for (int i = 0; i < nb_; ++i) {
      // The per-user part of the attention input: b_a + W_a,q q + W_a,u u.
      for (int a = 0; a < A_; ++a) qu_row[a] = ab[a];
      if (m_.dq + m_.du > 0) {
        for (int j = 0; j < m_.dq; ++j) qu_in[j] = s_.q[static_cast<size_t>(i) * m_.dq + j];
        for (int j = 0; j < m_.du; ++j) qu_in[m_.dq + j] = s_.prof[static_cast<size_t>(i) * m_.du + j];
        k_.sgemm(1, A_, m_.dq + m_.du, qu_in, m_.dq + m_.du, t_.attn_qu_t.data(), qu_row, A_, true, nullptr);
      }
      for (int n = s_.rowoff[i]; n < s_.rowoff[i + 1]; ++n) std::memcpy(za + static_cast<size_t>(n) * A_, qu_row, A_ * sizeof(float));
    }
    if (n_ > 0) {
      // Two products over attn_hp_t's rows: H_t comes from hs, p_t from the input rows x.
      const float* attn_h_t = t_.attn_hp_t.data();
      k_.sgemm(n_, A_, m_.dh, s_.hs.data(), m_.dh, attn_h_t, za, A_, true, nullptr);
      if (m_.dp > 0) k_.sgemm(n_, A_, m_.dp, s_.x.data() + m_.dx, K_, attn_h_t + static_cast<size_t>(m_.dh) * A_, za, A_, true, nullptr);
      k_.tanh_map(n_ * A_, za, za);  // za now holds tanh(z): its derivative is 1 − za²
    }
    for (int i = 0; i < nb_; ++i) {
      const int from = s_.rowoff[i], to = s_.rowoff[i + 1];
      float mx = -INFINITY;
      for (int n = from; n < to; ++n) {
        float sc = 0.0f;
        for (int a = 0; a < A_; ++a) sc += av[a] * za[static_cast<size_t>(n) * A_ + a];
        aw[n] = sc;
        mx = std::max(mx, sc);
      }
      double sum = 0.0;
      for (int n = from; n < to; ++n) sum += std::exp(static_cast<double>(aw[n] - mx));
      float* U = uvec + static_cast<size_t>(i) * m_.user_dim;
      for (int n = from; n < to; ++n) {
        aw[n] = static_cast<float>(std::exp(static_cast<double>(aw[n] - mx)) / sum);
        const float* h = s_.hs.data() + static_cast<size_t>(n) * m_.dh;
        for (int j = 0; j < m_.dh; ++j) U[j] += aw[n] * h[j];
      }
      for (int j = 0; j < m_.du; ++j) U[m_.dh + j] = s_.prof[static_cast<size_t>(i) * m_.du + j];
      for (int j = 0; j < m_.dq; ++j) U[m_.dh + m_.du + j] = s_.q[static_cast<size_t>(i) * m_.dq + j];
    }
  }

  // Candidate gc's target embeddings (the head's target fields, in order) into `dst`.
  void gather_target(const Head& head, const HeadLabels& lab, int gc, float* dst) const {
    const int F = m_.item_fields();
    for (int f : head.target_fields) {
      const Table& tab = m_.item_tables[f];
      if (tab.dim == 0) continue;
      std::memcpy(dst, tab.data + static_cast<int64_t>(lab.candidates.items[static_cast<int64_t>(gc) * F + f]) * tab.dim, tab.dim * sizeof(float));
      dst += tab.dim;
    }
  }

  // The gradient of candidate gc's target embeddings (`src`, laid out as gather_target lays them) into its rows.
  void scatter_target(const Head& head, const HeadLabels& lab, int gc, const float* src) {
    const int F = m_.item_fields();
    for (int f : head.target_fields) {
      const Table& tab = m_.item_tables[f];
      if (tab.dim == 0) continue;
      g_.sparse[t_.item[f]].add(lab.candidates.items[static_cast<int64_t>(gc) * F + f], src, 1.0f);
      src += tab.dim;
    }
  }

  void candidates(int h, const HeadLabels& lab, double total, double pair_total, const std::vector<int32_t>& begin,
                  bool train_shared, float* du) {
    const Head& head = m_.heads[h];
    const int c0 = begin[b0_], c1 = begin[b0_ + nb_], nc = c1 - c0;
    if (nc == 0) return;
    const int UD = m_.user_dim, at = UD + head.target_dim, in0 = at + head.dense;
    float* x0 = grow(s_.x0, static_cast<size_t>(nc) * in0);
    for (int c = 0; c < nc; ++c) {
      const int gc = c0 + c;
      float* row = x0 + static_cast<size_t>(c) * in0;
      std::memcpy(row, s_.uvec.data() + static_cast<size_t>(lab.owner[gc] - b0_) * UD, UD * sizeof(float));
      gather_target(head, lab, gc, row + UD);
      for (int j = 0; j < head.dense; ++j) row[at + j] = lab.candidates.dense[static_cast<int64_t>(gc) * head.dense + j];
    }
    head_forward(t_, k_, t_.heads[h], x0, nc, s_.head);
    const float* z = s_.head.acts[t_.heads[h].size() - 1].data();
    float* dz = zeroed(s_.dlogit, static_cast<size_t>(nc));
    const bool rank = head.kind == TaskKind::Rank;
    double loss = 0.0;
    for (int c = 0; c < nc; ++c) {
      const int gc = c0 + c;
      double w = lab.weight[gc], y = lab.label[gc];
      if (rank) {
        w *= kGradeWeight[static_cast<int>(y)];
        y = y > 0 ? 1.0 : 0.0;
      }
      loss += w * (softplus(z[c]) - y * z[c]) / total;
      dz[c] = static_cast<float>(lab.lambda * w * (sigmoid_d(z[c]) - y) / total);
    }
    if (rank && lab.pairwise && pair_total > 0) {
      for (int i = 0; i < nb_; ++i) {
        for (int a = begin[b0_ + i]; a < begin[b0_ + i + 1]; ++a)
          for (int b = begin[b0_ + i]; b < begin[b0_ + i + 1]; ++b) {
            if (!(lab.label[a] > lab.label[b])) continue;
            const double pw = 0.5 * (static_cast<double>(lab.weight[a]) + lab.weight[b]) / pair_total;
            const double diff = static_cast<double>(z[a - c0]) - z[b - c0];
            loss += pw * softplus(-diff);
            const double gd = lab.lambda * pw * (sigmoid_d(diff) - 1.0);
            dz[a - c0] += static_cast<float>(gd);
            dz[b - c0] -= static_cast<float>(gd);
          }
      }
    }
    g_.head_loss[h] += loss;
    head_backward(t_, k_, t_.heads[h], x0, nc, dz, train_shared, s_.head, g_);
    if (!train_shared) return;
    const float* dx0 = s_.head.dx0.data();
    for (int c = 0; c < nc; ++c) {
      const int gc = c0 + c;
      const float* row = dx0 + static_cast<size_t>(c) * in0;
      float* dU = du + static_cast<size_t>(lab.owner[gc] - b0_) * UD;
      for (int j = 0; j < UD; ++j) dU[j] += row[j];
      scatter_target(head, lab, gc, row + UD);
    }
  }

  // Sampled softmax per user over its candidates: z_c = ⟨user tower(U), item tower(t_c)⟩ + w_d·dense_c −
  // offset_c; loss = Σ_c w_c y_c (logsumexp_user(z) − z_c) / total.
  void retrieval(int h, const HeadLabels& lab, double total, const std::vector<int32_t>& begin, bool train_shared, float* du) {
    const Head& head = m_.heads[h];
    const int c0 = begin[b0_], c1 = begin[b0_ + nb_], nc = c1 - c0;
    if (nc == 0) return;
    const int UD = m_.user_dim, D = head.outputs, T = head.target_dim, ND = head.dense;
    const std::vector<HeadLayer>& user_layers = t_.heads[h];
    const std::vector<HeadLayer>& item_layers = t_.item_towers[h];
    head_forward(t_, k_, user_layers, s_.uvec.data(), nb_, s_.head);
    const float* u = s_.head.acts[user_layers.size() - 1].data();
    float* x0 = grow(s_.x0, static_cast<size_t>(nc) * T);
    for (int c = 0; c < nc; ++c) gather_target(head, lab, c0 + c, x0 + static_cast<size_t>(c) * T);
    head_forward(t_, k_, item_layers, x0, nc, s_.item_head);
    const float* v = s_.item_head.acts[item_layers.size() - 1].data();
    const float* wd = ND > 0 ? t_.params[t_.dense_w[h]].data : nullptr;
    float* dz = zeroed(s_.dlogit, static_cast<size_t>(nc));
    std::vector<double>& z = s_.logits;
    z.resize(static_cast<size_t>(nc));
    for (int c = 0; c < nc; ++c) {
      const int gc = c0 + c;
      const float* ur = u + static_cast<size_t>(lab.owner[gc] - b0_) * D;
      const float* vr = v + static_cast<size_t>(c) * D;
      double s = 0.0;
      for (int j = 0; j < D; ++j) s += static_cast<double>(ur[j]) * vr[j];
      for (int j = 0; j < ND; ++j) s += static_cast<double>(wd[j]) * lab.candidates.dense[static_cast<int64_t>(gc) * ND + j];
      z[static_cast<size_t>(c)] = s - (lab.offset ? lab.offset[gc] : 0.0f);
    }
    double loss = 0.0;
    for (int i = 0; i < nb_; ++i) {
      const int from = begin[b0_ + i] - c0, to = begin[b0_ + i + 1] - c0;
      if (from == to) continue;
      double mx = z[static_cast<size_t>(from)], pos = 0.0;
      for (int c = from; c < to; ++c) {
        mx = std::max(mx, z[static_cast<size_t>(c)]);
        pos += static_cast<double>(lab.weight[c0 + c]) * lab.label[c0 + c];
      }
      if (pos == 0.0) continue;
      double sum = 0.0;
      for (int c = from; c < to; ++c) sum += std::exp(z[static_cast<size_t>(c)] - mx);
      const double lse = mx + std::log(sum);
      for (int c = from; c < to; ++c) {
        const double wy = static_cast<double>(lab.weight[c0 + c]) * lab.label[c0 + c];
        loss += wy * (lse - z[static_cast<size_t>(c)]) / total;
        dz[c] = static_cast<float>(lab.lambda * (pos * std::exp(z[static_cast<size_t>(c)] - lse) - wy) / total);
      }
    }
    g_.head_loss[h] += loss;
    // dv_c = dz_c u_owner, du_owner += dz_c v_c, dw_d += dz_c dense_c.
    float* dv = grow(s_.dvec, static_cast<size_t>(nc) * D);
    float* dun = zeroed(s_.duser, static_cast<size_t>(nb_) * D);
    float* dwd = ND > 0 ? g_.dense[t_.dense_w[h]].data() : nullptr;
    for (int c = 0; c < nc; ++c) {
      const int gc = c0 + c, o = lab.owner[gc] - b0_;
      const float* ur = u + static_cast<size_t>(o) * D;
      const float* vr = v + static_cast<size_t>(c) * D;
      float* dvr = dv + static_cast<size_t>(c) * D;
      float* dur = dun + static_cast<size_t>(o) * D;
      for (int j = 0; j < D; ++j) {
        dvr[j] = dz[c] * ur[j];
        dur[j] += dz[c] * vr[j];
      }
      for (int j = 0; j < ND; ++j) dwd[j] += dz[c] * lab.candidates.dense[static_cast<int64_t>(gc) * ND + j];
    }
    head_backward(t_, k_, item_layers, x0, nc, dv, train_shared, s_.item_head, g_);
    if (train_shared)
      for (int c = 0; c < nc; ++c) scatter_target(head, lab, c0 + c, s_.item_head.dx0.data() + static_cast<size_t>(c) * T);
    head_backward(t_, k_, user_layers, s_.uvec.data(), nb_, dun, train_shared, s_.head, g_);
    if (!train_shared) return;
    const float* dx0 = s_.head.dx0.data();
    for (size_t i = 0; i < static_cast<size_t>(nb_) * UD; ++i) du[i] += dx0[i];
  }

  void multiclass(int h, const HeadLabels& lab, double total, bool train_shared, float* du) {
    const Head& head = m_.heads[h];
    const int C = head.outputs, UD = m_.user_dim;
    head_forward(t_, k_, t_.heads[h], s_.uvec.data(), nb_, s_.head);
    const float* z = s_.head.acts[t_.heads[h].size() - 1].data();
    float* dz = zeroed(s_.dlogit, static_cast<size_t>(nb_) * C);
    double loss = 0.0;
    for (int i = 0; i < nb_; ++i) {
      const int y = lab.classes[b0_ + i];
      if (y < 0) continue;
      const float* zi = z + static_cast<size_t>(i) * C;
      double mx = zi[0];
      for (int c = 1; c < C; ++c) mx = std::max(mx, static_cast<double>(zi[c]));
      double sum = 0.0;
      for (int c = 0; c < C; ++c) sum += std::exp(zi[c] - mx);
      const double w = lab.class_weight[b0_ + i] / total;
      loss += w * (mx + std::log(sum) - zi[y]);
      for (int c = 0; c < C; ++c)
        dz[static_cast<size_t>(i) * C + c] = static_cast<float>(lab.lambda * w * (std::exp(zi[c] - mx) / sum - (c == y ? 1.0 : 0.0)));
    }
    g_.head_loss[h] += loss;
    head_backward(t_, k_, t_.heads[h], s_.uvec.data(), nb_, dz, train_shared, s_.head, g_);
    if (!train_shared) return;
    const float* dx0 = s_.head.dx0.data();
    for (size_t i = 0; i < static_cast<size_t>(nb_) * UD; ++i) du[i] += dx0[i];
  }

  void attention_backward(float* dx) {
    const int dh = m_.dh, UD = m_.user_dim;
    const size_t rows = static_cast<size_t>(std::max(n_, 1));
    float* dhs = zeroed(s_.dhs, rows * dh);
    if (n_ == 0) {
      profile_query_grads(nullptr);
      return;
    }
    const float* za = s_.za.data();  // tanh(z)
    const float* av = t_.params[t_.attn_v].data;
    float* dzin_a = grow(s_.dzin, rows * A_);  // d(loss)/dz, N × A (first holds da_n in column 0)
    float* dv = g_.dense[t_.attn_v].data();
    float* db = g_.dense[t_.attn_b].data();
    for (int i = 0; i < nb_; ++i) {
      const float* dr = s_.duvec.data() + static_cast<size_t>(i) * UD;
      const int from = s_.rowoff[i], to = s_.rowoff[i + 1];
      double sum_ad = 0.0;
      for (int n = from; n < to; ++n) {
        const float* h = s_.hs.data() + static_cast<size_t>(n) * dh;
        double da = 0.0;
        for (int j = 0; j < dh; ++j) da += static_cast<double>(dr[j]) * h[j];
        dzin_a[static_cast<size_t>(n) * A_] = static_cast<float>(da);  // parked: da_n
        sum_ad += s_.aw[n] * da;
      }
      for (int n = from; n < to; ++n) {
        const float a = s_.aw[n];
        const double ds = a * (dzin_a[static_cast<size_t>(n) * A_] - sum_ad);
        float* dz = dzin_a + static_cast<size_t>(n) * A_;
        const float* tz = za + static_cast<size_t>(n) * A_;
        for (int q = 0; q < A_; ++q) {
          dv[q] += static_cast<float>(ds * tz[q]);
          dz[q] = static_cast<float>(ds * av[q] * (1.0 - static_cast<double>(tz[q]) * tz[q]));
          db[q] += dz[q];
        }
        float* dH = dhs + static_cast<size_t>(n) * dh;
        for (int j = 0; j < dh; ++j) dH[j] = a * dr[j];
      }
    }
    // dW_a += dzᵀ · [H_t ; q ; u ; p_t] and d[H_t ; q ; u ; p_t] = dz · W_a.
    float* zin = grow(s_.zin, rows * attn_in_);
    for (int i = 0; i < nb_; ++i)
      for (int n = s_.rowoff[i]; n < s_.rowoff[i + 1]; ++n) {
        float* row = zin + static_cast<size_t>(n) * attn_in_;
        std::memcpy(row, s_.hs.data() + static_cast<size_t>(n) * dh, dh * sizeof(float));
        std::memcpy(row + dh, s_.q.data() + static_cast<size_t>(i) * m_.dq, m_.dq * sizeof(float));
        std::memcpy(row + dh + m_.dq, s_.prof.data() + static_cast<size_t>(i) * m_.du, m_.du * sizeof(float));
        std::memcpy(row + dh + m_.dq + m_.du, s_.x.data() + static_cast<size_t>(n) * K_ + m_.dx, m_.dp * sizeof(float));
      }
    float* dt = grow(s_.dpre_t, static_cast<size_t>(A_) * n_);
    transpose(dzin_a, n_, A_, dt);
    k_.sgemm(A_, attn_in_, n_, dt, n_, zin, g_.dense[t_.attn_w].data(), attn_in_, true, nullptr);
    float* dzin = grow(s_.zin, rows * attn_in_);  // zin is no longer needed
    k_.sgemm(n_, attn_in_, A_, dzin_a, A_, t_.params[t_.attn_w].data, dzin, attn_in_, false, nullptr);
    float* duv = s_.duvec.data();
    for (int i = 0; i < nb_; ++i)
      for (int n = s_.rowoff[i]; n < s_.rowoff[i + 1]; ++n) {
        const float* row = dzin + static_cast<size_t>(n) * attn_in_;
        float* dH = dhs + static_cast<size_t>(n) * dh;
        for (int j = 0; j < dh; ++j) dH[j] += row[j];
        // q and u gradients join dU's u and q parts (U = [r ; u ; q]).
        float* dU = duv + static_cast<size_t>(i) * UD;
        for (int j = 0; j < m_.dq; ++j) dU[dh + m_.du + j] += row[dh + j];
        for (int j = 0; j < m_.du; ++j) dU[dh + j] += row[dh + m_.dq + j];
        float* dxp = dx + static_cast<size_t>(n) * K_ + m_.dx;
        for (int j = 0; j < m_.dp; ++j) dxp[j] += row[dh + m_.dq + m_.du + j];
      }
    profile_query_grads(duv);
  }

  // u and q gradients (from U directly and through attention) down to their table rows.
  void profile_query_grads(const float* duv_in) {
    const float* duv = duv_in ? duv_in : s_.duvec.data();
    const int dh = m_.dh, UD = m_.user_dim, P = m_.profile_fields();
    for (int i = 0; i < nb_; ++i) {
      const int b = b0_ + i;
      const float* dU = duv + static_cast<size_t>(i) * UD;
      int at = dh;
      for (int f = 0; f < P; ++f) {
        const Table& tab = m_.profile_tables[f];
        if (tab.dim == 0) continue;
        g_.sparse[t_.profile[f]].add(in_.profile[static_cast<int64_t>(b) * P + f], dU + at, 1.0f);
        at += tab.dim;
      }
      if (m_.dq > 0) {
        const int32_t from = in_.query_offsets[b], to = in_.query_offsets[b + 1];
        for (int32_t tk = from; tk < to; ++tk)
          g_.sparse[t_.query].add(in_.query_tokens[tk], dU + dh + m_.du, 1.0f / static_cast<float>(to - from));
      }
    }
  }

  // One step's cell backward for one user: the gates' pre-activation gradients into out (i | f | g | o) and
  // the carried dc. The buffers never overlap; saying so (restrict) lets the compiler vectorise the loop, which
  // it left scalar. Element by element the arithmetic is the same.
  static void cell_backward(int H, const float* __restrict gt, const float* __restrict tc, const float* __restrict cprev,
                            const float* __restrict dH, const float* __restrict dh_c, float* __restrict dc_c,
                            float* __restrict out) {
    for (int j = 0; j < H; ++j) {
      const float ig = gt[j], fg = gt[H + j], gg = gt[2 * H + j], og = gt[3 * H + j];
      const float dh = dH[j] + dh_c[j];
      const float dc = dc_c[j] + dh * og * (1.0f - tc[j] * tc[j]);
      out[j] = dc * gg * ig * (1.0f - ig);
      out[H + j] = dc * cprev[j] * fg * (1.0f - fg);
      out[2 * H + j] = dc * ig * (1.0f - gg * gg);
      out[3 * H + j] = dh * tc[j] * og * (1.0f - og);
      dc_c[j] = dc * fg;
    }
  }

  void lstm_backward(int d, float* dx) {
    const Trainer::Impl::Dir& dir = t_.dir[d];
    const float* gates = s_.gates[d].data();
    const float* cs = s_.cs[d].data();
    const float* tcs = s_.tcs[d].data();
    float* dpre = grow(s_.dpre, static_cast<size_t>(n_) * G_);
    float* dhc = zeroed(s_.dh_carry, static_cast<size_t>(nb_) * H_);
    float* dcc = zeroed(s_.dc_carry, static_cast<size_t>(nb_) * H_);
    float* dstep = grow(s_.dstep, static_cast<size_t>(nb_) * G_);
    const float* zeros = zeroed(s_.zeros, static_cast<size_t>(H_));
    const float* dhs = s_.dhs.data();
    for (int s = max_len_ - 1; s >= 0; --s) {
      int M = 0;
      while (M < nb_ && len(s_.order[M]) > s) ++M;
      for (int r = 0; r < M; ++r) {
        const int i = s_.order[r];
        const int n = row_of(i, d, s);
        const float* gt = gates + static_cast<size_t>(n) * G_;
        const float* tc = tcs + static_cast<size_t>(n) * H_;
        const float* cprev = s == 0 ? zeros : cs + static_cast<size_t>(row_of(i, d, s - 1)) * H_;
        const float* dH = dhs + static_cast<size_t>(n) * m_.dh + d * H_;
        float* dh_c = dhc + static_cast<size_t>(r) * H_;
        float* dc_c = dcc + static_cast<size_t>(r) * H_;
        float* out = dstep + static_cast<size_t>(r) * G_;
        cell_backward(H_, gt, tc, cprev, dH, dh_c, dc_c, out);
        std::memcpy(dpre + static_cast<size_t>(n) * G_, out, G_ * sizeof(float));
      }
      // dh_{t-1} of the active users = dPre · W_h (W_h is 4H × H, the kernel's K × N layout as stored).
      if (s > 0) k_.sgemm(M, H_, G_, dstep, G_, t_.params[dir.wh].data, dhc, H_, false, nullptr);
    }
    // h_{t-1} of every row (zero at each user's first step of this direction).
    float* hprev = grow(s_.hprev, static_cast<size_t>(n_) * H_);
    for (int i = 0; i < nb_; ++i)
      for (int s = 0; s < len(i); ++s) {
        float* dst = hprev + static_cast<size_t>(row_of(i, d, s)) * H_;
        if (s == 0) std::memset(dst, 0, H_ * sizeof(float));
        else std::memcpy(dst, s_.hs.data() + static_cast<size_t>(row_of(i, d, s - 1)) * m_.dh + d * H_, H_ * sizeof(float));
      }
    float* dpt = grow(s_.dpre_t, static_cast<size_t>(G_) * n_);
    transpose(dpre, n_, G_, dpt);
    k_.sgemm(G_, H_, n_, dpt, n_, hprev, g_.dense[dir.wh].data(), H_, true, nullptr);
    float* dw = grow(s_.dw, static_cast<size_t>(G_) * K_);
    k_.sgemm(G_, K_, n_, dpt, n_, s_.x.data(), dw, K_, false, nullptr);
    float* dwx = g_.dense[dir.wx].data();
    for (int j = 0; j < G_; ++j)
      for (int c = 0; c < m_.dx; ++c) dwx[static_cast<size_t>(j) * m_.dx + c] += dw[static_cast<size_t>(j) * K_ + c];
    if (m_.dp > 0) {
      float* dwp = g_.dense[dir.wp].data();
      for (int j = 0; j < G_; ++j) {
        const int wp_row = property_row(j, H_);
        if (wp_row < 0) continue;
        for (int c = 0; c < m_.dp; ++c) dwp[static_cast<size_t>(wp_row) * m_.dp + c] += dw[static_cast<size_t>(j) * K_ + m_.dx + c];
      }
    }
    float* db = g_.dense[dir.b].data();
    for (int n = 0; n < n_; ++n)
      for (int j = 0; j < G_; ++j) db[j] += dpre[static_cast<size_t>(n) * G_ + j];
    k_.sgemm(n_, K_, G_, dpre, G_, dir.wxp.data(), dx, K_, true, nullptr);
  }

  void scatter(const float* dx) {
    const int F = m_.item_fields();
    for (int n = 0; n < n_; ++n) {
      const float* row = dx + static_cast<size_t>(n) * K_;
      int at = 0;
      for (int f = 0; f < F; ++f) {
        const Table& tab = m_.item_tables[f];
        if (tab.dim == 0) continue;
        g_.sparse[t_.item[f]].add(in_.items[gn(n) * F + f], row + at, 1.0f);
        at += tab.dim;
      }
      const Table* props[3] = {&m_.type_table, &m_.gap_table, &m_.scene_table};
      const int idx[3] = {t_.type, t_.gap, t_.scene};
      for (int p = 0; p < 3; ++p) {
        if (props[p]->dim == 0) continue;
        g_.sparse[idx[p]].add(in_.properties[gn(n) * 3 + p], row + at, 1.0f);
        at += props[p]->dim;
      }
    }
  }

  const Trainer::Impl& t_;
  const Model& m_;
  const KernelTable& k_;
  const UserBatch& in_;
  const TrainBatch& batch_;
  int b0_, nb_;
  const Dropout& drop_;
  Grads& g_;
  Scratch& s_;
  int H_, G_, K_, A_, attn_in_, n_ = 0, max_len_ = 0;
  int64_t base_ = 0;
};

}  // namespace

void backward_users(const Trainer::Impl& t, const KernelTable& k, const TrainBatch& batch, int b0, int b1,
                    const std::vector<double>& totals, const std::vector<double>& pair_totals,
                    const std::vector<std::vector<int32_t>>& cand_begin, bool train_shared, const Dropout& dropout,
                    Grads& g) {
  ChunkPass pass(t, k, batch, b0, b1, dropout, g);
  pass.forward();
  pass.heads(totals, pair_totals, cand_begin, train_shared);
  if (train_shared) pass.backward();
}

}  // namespace dupn
