// The user part of the forward pass: embeddings → property-gated bi-LSTM → attention → U.
// Work is cut into chunks of users; inside a chunk the input projection of every step of a direction is
// one matrix product, and the recurrence is one product per step over the chunk's still-active users
// (sorted by length, so finished users drop off the end and padding is never computed).
#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

#include "activations.h"
#include "dupn/model.h"
#include "dupn/parallel.h"

namespace dupn {
namespace {

void copy_row(const Table& t, int32_t id, float* dst) {
  if (t.dim > 0) std::memcpy(dst, t.data + static_cast<int64_t>(id) * t.dim, sizeof(float) * t.dim);
}

// [q ; u] of one user, the order in which attn.w sees them.
void user_context(const Model& m, const UserBatch& in, int b, float* qu) {
  float* q = qu;
  std::fill(q, q + m.dq, 0.0f);
  if (m.dq > 0) {
    const int32_t t0 = in.query_offsets[b], t1 = in.query_offsets[b + 1];
    for (int32_t t = t0; t < t1; ++t) {
      const float* row = m.query_table.data + static_cast<int64_t>(in.query_tokens[t]) * m.dq;
      for (int c = 0; c < m.dq; ++c) q[c] += row[c];
    }
    if (t1 > t0) {
      const float inv = 1.0f / static_cast<float>(t1 - t0);
      for (int c = 0; c < m.dq; ++c) q[c] *= inv;
    }
  }
  float* u = qu + m.dq;
  const int P = m.profile_fields();
  for (int f = 0; f < P; ++f) {
    copy_row(m.profile_tables[f], in.profile[static_cast<int64_t>(b) * P + f], u);
    u += m.profile_tables[f].dim;
  }
}

void encode_chunk(const Model& m, const KernelTable& k, const UserBatch& in, const std::vector<int64_t>& offsets,
                  int b0, int b1, float* users, float* attention) {
  const int H = m.hidden, G = 4 * H, K = m.dx + m.dp, A = m.attention_hidden, F = m.item_fields();
  const int bc = b1 - b0;
  const int64_t base = offsets[b0];
  const int n = static_cast<int>(offsets[b1] - base);

  // X: one row [e_t ; p_t] per behaviour of the chunk.
  std::vector<float> X(static_cast<size_t>(n) * K);
  for (int r = 0; r < n; ++r) {
    float* x = X.data() + static_cast<size_t>(r) * K;
    const int32_t* ids = in.items + (base + r) * F;
    for (int f = 0; f < F; ++f) {
      copy_row(m.item_tables[f], ids[f], x);
      x += m.item_tables[f].dim;
    }
    const int32_t* props = in.properties + (base + r) * 3;
    copy_row(m.type_table, props[0], x);
    x += m.type_table.dim;
    copy_row(m.gap_table, props[1], x);
    x += m.gap_table.dim;
    copy_row(m.scene_table, props[2], x);
  }

  std::vector<int> order(bc);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return in.lengths[b0 + a] > in.lengths[b0 + b]; });
  const int max_len = bc > 0 ? in.lengths[b0 + order[0]] : 0;

  std::vector<float> Hout(static_cast<size_t>(n) * m.dh);
  std::vector<float> Gx(static_cast<size_t>(n) * G), Z(static_cast<size_t>(bc) * G);
  std::vector<float> hs(static_cast<size_t>(bc) * H), cs(static_cast<size_t>(bc) * H);
  for (int d = 0; d < m.directions; ++d) {
    const Model::Direction& w = m.dir[d];
    fill_rows(Gx.data(), n, G, w.b.data());
    k.sgemm(n, G, K, X.data(), K, w.wxp_t.data(), Gx.data(), G, true);
    std::fill(hs.begin(), hs.end(), 0.0f);
    std::fill(cs.begin(), cs.end(), 0.0f);
    int active = bc;
    for (int s = 0; s < max_len; ++s) {
      while (active > 0 && in.lengths[b0 + order[active - 1]] <= s) --active;
      k.sgemm(active, G, H, hs.data(), H, w.wh_t.data(), Z.data(), G, false);
      for (int j = 0; j < active; ++j) {
        const int u = order[j];
        const int len = in.lengths[b0 + u];
        const int t = d == 0 ? s : len - 1 - s;
        const int64_t row = offsets[b0 + u] - base + t;
        const float* z = Z.data() + static_cast<size_t>(j) * G;
        const float* gx = Gx.data() + row * G;
        float* h = hs.data() + static_cast<size_t>(j) * H;
        k.lstm_cell(H, z, gx, cs.data() + static_cast<size_t>(j) * H, h);
        std::memcpy(Hout.data() + row * m.dh + d * H, h, sizeof(float) * H);
      }
    }
  }

  // Attention pre-activations: W_H H_t + W_p p_t for every step, then + (W_q q + W_u u + b) per user.
  std::vector<float> S(static_cast<size_t>(n) * A);
  k.sgemm(n, A, m.dh, Hout.data(), m.dh, m.attn_hp_t.data(), S.data(), A, false);
  if (m.dp > 0) k.sgemm(n, A, m.dp, X.data() + m.dx, K, m.attn_hp_t.data() + static_cast<size_t>(m.dh) * A, S.data(), A, true);

  std::vector<float> qu(m.dq + m.du), cu(A), score;
  for (int i = 0; i < bc; ++i) {
    const int b = b0 + i;
    const int len = in.lengths[b];
    const int64_t row0 = offsets[b] - base;
    user_context(m, in, b, qu.data());
    std::copy(m.attn_b.begin(), m.attn_b.end(), cu.begin());
    if (!qu.empty()) k.sgemm(1, A, m.dq + m.du, qu.data(), m.dq + m.du, m.attn_qu_t.data(), cu.data(), A, true);

    score.assign(len, 0.0f);
    float top = -INFINITY;
    for (int t = 0; t < len; ++t) {
      const float* srow = S.data() + (row0 + t) * A;
      const float acc = k.tanh_dot(A, srow, cu.data(), m.attn_v.data());
      score[t] = acc;
      top = std::max(top, acc);
    }
    float total = 0.0f;
    for (int t = 0; t < len; ++t) total += (score[t] = std::exp(score[t] - top));

    float* U = users + static_cast<int64_t>(b) * m.user_dim;
    float* r = U;
    std::fill(r, r + m.dh, 0.0f);
    for (int t = 0; t < len; ++t) {
      const float a = score[t] / total;
      if (attention) attention[offsets[b] + t] = a;
      const float* h = Hout.data() + (row0 + t) * m.dh;
      for (int c = 0; c < m.dh; ++c) r[c] += a * h[c];
    }
    // U = [r ; u ; q]
    std::copy(qu.begin() + m.dq, qu.end(), U + m.dh);
    std::copy(qu.begin(), qu.begin() + m.dq, U + m.dh + m.du);
  }
}

}  // namespace

void encode(const Model& m, const KernelTable& k, const UserBatch& in, float* users, float* attention, int threads) {
  std::vector<int64_t> offsets(static_cast<size_t>(in.batch) + 1, 0);
  for (int b = 0; b < in.batch; ++b) offsets[b + 1] = offsets[b] + in.lengths[b];
  if (threads < 1) threads = 1;
  const int chunk = std::max(1, std::min(64, (in.batch + 2 * threads - 1) / (2 * threads)));
  const int chunks = (in.batch + chunk - 1) / chunk;
  parallel_for(chunks, threads, [&](int, int c) {
    encode_chunk(m, k, in, offsets, c * chunk, std::min(in.batch, (c + 1) * chunk), users, attention);
  });
}

}  // namespace dupn
