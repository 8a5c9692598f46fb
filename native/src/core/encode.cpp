// The user part of the forward pass: embeddings → property-gated bi-LSTM → attention → U.
// The batch is cut into chunks of users. Inside a chunk the input projection of every step of a
// direction is one matrix product, and the recurrence is one product per step over the chunk's
// still-active users (sorted by length, so finished users drop off the end and padding is never
// computed). Chunks are the unit of parallel work; when there are fewer chunks than threads (small
// batches, B = 1 above all) the two directions of a chunk run on different threads instead.
// Scratch memory comes from per-thread arenas that only grow, so a warm call allocates nothing.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "activations.h"
#include "packed_model.h"
#include "dupn/thread_pool.h"

namespace dupn {
namespace {

// Per-direction scratch of one chunk.
struct DirScratch {
  AlignedFloats xb, gx, z, hs, cs;
  AlignedPairs pairs, hb;
  std::vector<int> first;
  std::vector<const float*> gx_rows;
};

// Steps of input projection computed at once (see Encoder::direction).
constexpr int kBlock = 8;
// How far ahead the gather prefetches embedding rows.
constexpr int kPrefetchRows = 8;

// Scratch of one chunk: inputs, the bi-LSTM output and the attention terms.
struct ChunkScratch {
  AlignedFloats x, hout, s, qu, cu, score;
  AlignedPairs pairs;
  std::vector<int> order;
  DirScratch dir[2];
};


struct Chunk {
  int b0, b1;
  int64_t base;  // first behaviour row of the chunk
  int n;         // behaviours in the chunk
};

class Encoder {
 public:
  Encoder(const Model& m, const KernelTable& k, const UserBatch& in, float* users, float* attention)
      : m_(m), k_(k), in_(in), users_(users), attention_(attention), offsets_(static_cast<size_t>(in.batch) + 1, 0) {
    for (int b = 0; b < in.batch; ++b) offsets_[b + 1] = offsets_[b] + in.lengths[b];
  }

  // C = A·W (+ bias on every row, when given) for the big products: fp32, or bf16 with fp32 accumulation when
  // the model says so.
  void product(int M, int N, int K, const float* A, int lda, const AlignedFloats& w, const AlignedPairs& w_bf, float* C,
               const float* bias, AlignedPairs& pairs) const {
    if (!m_.bf16) return k_.sgemm(M, N, K, A, lda, w.data(), C, N, false, bias);
    const int K2 = (K + 1) / 2;
    uint32_t* a = grow(pairs, static_cast<size_t>(M) * K2 + 1);
    m_.bf16->convert(M, K, A, lda, a);
    m_.bf16->gemm(M, N, K2, a, K2, w_bf.data(), C, N, false, bias);
  }

  Chunk chunk(int c, int size) const {
    const int b0 = c * size, b1 = std::min(in_.batch, b0 + size);
    return {b0, b1, offsets_[b0], static_cast<int>(offsets_[b1] - offsets_[b0])};
  }

  // X = [e_t ; p_t] for every behaviour of the chunk, and the users sorted by length (longest first).
  void gather(const Chunk& c, ChunkScratch& s) const {
    const int K = m_.dx + m_.dp, F = m_.item_fields();
    float* X = grow(s.x, static_cast<size_t>(c.n) * K);
    for (int r = 0; r < c.n; ++r) {
      // Item rows are random reads from tables far larger than the caches: ask for them a few rows ahead.
      if (r + kPrefetchRows < c.n) {
        const int32_t* ahead = in_.items + (c.base + r + kPrefetchRows) * F;
        for (int f = 0; f < F; ++f) {
          const Table& t = m_.item_tables[f];
          if (t.dim > 0 && t.keys == nullptr) __builtin_prefetch(t.data + static_cast<int64_t>(ahead[f]) * t.dim);
        }
      }
      float* x = X + static_cast<size_t>(r) * K;
      const int32_t* ids = in_.items + (c.base + r) * F;
      for (int f = 0; f < F; ++f) x = copy_row(m_.item_tables[f], ids[f], x);
      const int32_t* props = in_.properties + (c.base + r) * 3;
      x = copy_row(m_.type_table, props[0], x);
      x = copy_row(m_.gap_table, props[1], x);
      copy_row(m_.scene_table, props[2], x);
    }
    const int bc = c.b1 - c.b0;
    s.order.resize(bc);
    std::iota(s.order.begin(), s.order.end(), 0);
    std::stable_sort(s.order.begin(), s.order.end(), [&](int a, int b) { return in_.lengths[c.b0 + a] > in_.lengths[c.b0 + b]; });
    grow(s.hout, static_cast<size_t>(c.n) * m_.dh);
    grow(s.s, static_cast<size_t>(c.n) * m_.attention_hidden);  // here, so threads sharing the chunk never resize it
  }

  // One LSTM direction over the chunk: writes its half of H_t for every behaviour. The input projection
  // runs a block of kBlock steps at a time (one matrix product over the active users' rows), so its
  // output stays in L2 until the recurrence consumes it instead of making a round trip to memory. Each
  // step is the kernels' fused step where they have one (interleaved gate layout), else a GEMM and the
  // cell kernel; per element both compute the same thing. Precision bf16 has its own fused step, which also
  // hands the next step h as bf16 pairs.
  void direction(const Chunk& c, ChunkScratch& s, int d) const {
    const bool fused = m_.gate_block > 0;
    const int H = m_.hidden, K = m_.dx + m_.dp, bc = c.b1 - c.b0;
    const int G = fused ? m_.gp : 4 * H, hp = fused ? m_.hp : H;
    const Model::Direction& w = m_.dir[d];
    const AlignedFloats& wx = fused ? w.wxp_i : w.wxp_t;
    DirScratch& ds = s.dir[d];
    float* Xb = grow(ds.xb, static_cast<size_t>(bc) * kBlock * K);
    float* Gx = grow(ds.gx, static_cast<size_t>(bc) * kBlock * G);
    float* Z = grow(ds.z, static_cast<size_t>(bc) * G);
    float* hprev = grow(ds.hs, static_cast<size_t>(bc) * hp * 2);
    float* hnext = hprev + static_cast<size_t>(bc) * hp;
    float* cs = grow(ds.cs, static_cast<size_t>(bc) * hp);
    int* first = grow(ds.first, static_cast<size_t>(bc) + 1);
    const float** gx_rows = grow(ds.gx_rows, static_cast<size_t>(bc) + 1);
    std::fill(hprev, hprev + static_cast<size_t>(bc) * hp * 2, 0.0f);
    std::fill(cs, cs + static_cast<size_t>(bc) * hp, 0.0f);
    // The bf16 fused step reads h_prev as bf16 pairs and writes the next step's.
    uint32_t *hbprev = nullptr, *hbnext = nullptr;
    if (fused && m_.bf16) {
      hbprev = grow(ds.hb, static_cast<size_t>(bc) * hp);
      hbnext = hbprev + static_cast<size_t>(bc) * hp / 2;
      std::fill(hbprev, hbprev + static_cast<size_t>(bc) * hp, 0u);
    }
    const int max_len = bc > 0 ? in_.lengths[c.b0 + s.order[0]] : 0;
    auto row_of = [&](int j, int step) -> int64_t {
      const int u = s.order[j];
      const int len = in_.lengths[c.b0 + u];
      return offsets_[c.b0 + u] - c.base + (d == 0 ? step : len - 1 - step);
    };
    int active = bc;
    for (int step0 = 0; step0 < max_len; step0 += kBlock) {
      while (active > 0 && in_.lengths[c.b0 + s.order[active - 1]] <= step0) --active;
      // Pack the block's rows of X densely: user j's steps step0 .. step0 + n_j - 1 start at first[j].
      int rows = 0;
      for (int j = 0; j < active; ++j) {
        first[j] = rows;
        const int n = std::min(kBlock, in_.lengths[c.b0 + s.order[j]] - step0);
        for (int i = 0; i < n; ++i, ++rows)
          std::memcpy(Xb + static_cast<size_t>(rows) * K, s.x.data() + row_of(j, step0 + i) * K, sizeof(float) * K);
      }
      product(rows, G, K, Xb, K, wx, w.wxp_bf, Gx, fused ? w.b_i.data() : w.b.data(), ds.pairs);
      int live = active;
      for (int step = step0; step < std::min(max_len, step0 + kBlock); ++step) {
        while (live > 0 && in_.lengths[c.b0 + s.order[live - 1]] <= step) --live;
        if (fused) {
          for (int j = 0; j < live; ++j) gx_rows[j] = Gx + static_cast<size_t>(first[j] + step - step0) * G;
          if (m_.bf16) {
            m_.bf16->lstm_step(live, H, hbprev, hp, w.wh_bf.data(), G, gx_rows, cs, hnext, hbnext);
            std::swap(hbprev, hbnext);
          } else {
            k_.lstm_step(live, H, hprev, hp, w.wh_i.data(), G, gx_rows, cs, hnext);
          }
        } else {
          product(live, G, H, hprev, H, w.wh_t, w.wh_bf, Z, nullptr, ds.pairs);
          for (int j = 0; j < live; ++j) {
            const float* gx = Gx + static_cast<size_t>(first[j] + step - step0) * G;
            k_.lstm_cell(H, Z + static_cast<size_t>(j) * G, gx, cs + static_cast<size_t>(j) * H, hnext + static_cast<size_t>(j) * H);
          }
        }
        for (int j = 0; j < live; ++j)
          std::memcpy(s.hout.data() + row_of(j, step) * m_.dh + d * H, hnext + static_cast<size_t>(j) * hp, sizeof(float) * H);
        std::swap(hprev, hnext);
      }
    }
  }

  // Attention over each user's steps, then U = [r ; u ; q].
  void attend(const Chunk& c, ChunkScratch& s) const {
    scores(s, 0, c.n, s.pairs);
    pool(c, s);
  }

  // W_H H_t + W_p p_t for the chunk's behaviour rows r0 .. r1 - 1 (the per-user part, W_q q + W_u u + b, is
  // added in pool). A row's result does not depend on which rows are computed with it, so the rows can be
  // split between threads with the same bits.
  void scores(ChunkScratch& s, int r0, int r1, AlignedPairs& pairs) const {
    const int A = m_.attention_hidden, K = m_.dx + m_.dp;
    if (r1 <= r0) return;
    float* S = s.s.data() + static_cast<size_t>(r0) * A;
    product(r1 - r0, A, m_.dh, s.hout.data() + static_cast<size_t>(r0) * m_.dh, m_.dh, m_.attn_hp_t, m_.attn_h_bf, S, nullptr, pairs);
    if (m_.dp > 0)
      k_.sgemm(r1 - r0, A, m_.dp, s.x.data() + static_cast<size_t>(r0) * K + m_.dx, K, m_.attn_hp_t.data() + static_cast<size_t>(m_.dh) * A, S, A, true, nullptr);
  }

  // The attention weights of each user's steps from its rows of S, and U.
  void pool(const Chunk& c, ChunkScratch& s) const {
    const int A = m_.attention_hidden;
    float* S = s.s.data();
    float* qu = grow(s.qu, static_cast<size_t>(m_.dq + m_.du) + 1);
    float* cu = grow(s.cu, static_cast<size_t>(A));
    for (int b = c.b0; b < c.b1; ++b) {
      const int len = in_.lengths[b];
      const int64_t row0 = offsets_[b] - c.base;
      user_context(b, qu);
      std::copy(m_.attn_b.begin(), m_.attn_b.end(), cu);
      if (m_.dq + m_.du > 0) k_.sgemm(1, A, m_.dq + m_.du, qu, m_.dq + m_.du, m_.attn_qu_t.data(), cu, A, true, nullptr);
      float* score = grow(s.score, static_cast<size_t>(len) + 1);
      float top = -INFINITY;
      for (int t = 0; t < len; ++t) {
        score[t] = k_.tanh_dot(A, S + (row0 + t) * A, cu, m_.attn_v.data());
        top = std::max(top, score[t]);
      }
      float total = 0.0f;
      for (int t = 0; t < len; ++t) total += (score[t] = std::exp(score[t] - top));
      float* U = users_ + static_cast<int64_t>(b) * m_.user_dim;
      std::fill(U, U + m_.dh, 0.0f);
      for (int t = 0; t < len; ++t) {
        const float a = score[t] / total;
        if (attention_) attention_[offsets_[b] + t] = a;
        const float* h = s.hout.data() + (row0 + t) * m_.dh;
        for (int q = 0; q < m_.dh; ++q) U[q] += a * h[q];
      }
      std::copy(qu + m_.dq, qu + m_.dq + m_.du, U + m_.dh);
      std::copy(qu, qu + m_.dq, U + m_.dh + m_.du);
    }
  }

 private:
  static float* copy_row(const Table& t, int32_t id, float* dst) {
    t.copy_row(id, dst);
    return dst + t.dim;
  }

  // [q ; u] of one user, the order in which attn.w sees them.
  void user_context(int b, float* qu) const {
    std::fill(qu, qu + m_.dq, 0.0f);
    if (m_.dq > 0) {
      const int32_t t0 = in_.query_offsets[b], t1 = in_.query_offsets[b + 1];
      for (int32_t t = t0; t < t1; ++t) {
        const float* row = m_.query_table.row(in_.query_tokens[t]);
        if (row)
          for (int c = 0; c < m_.dq; ++c) qu[c] += row[c];
      }
      if (t1 > t0) {
        const float inv = 1.0f / static_cast<float>(t1 - t0);
        for (int c = 0; c < m_.dq; ++c) qu[c] *= inv;
      }
    }
    float* u = qu + m_.dq;
    const int P = m_.profile_fields();
    for (int f = 0; f < P; ++f) u = copy_row(m_.profile_tables[f], in_.profile[static_cast<int64_t>(b) * P + f], u);
  }

  const Model& m_;
  const KernelTable& k_;
  const UserBatch& in_;
  float* users_;
  float* attention_;
  std::vector<int64_t> offsets_;
};

// Each thread's own scratch, reused across calls.
thread_local ChunkScratch tls_chunk;
thread_local std::vector<ChunkScratch> tls_shared;

}  // namespace

void encode(const Model& m, const KernelTable& k, const UserBatch& in, float* users, float* attention, int threads) {
  if (threads < 1) threads = 1;
  Encoder enc(m, k, in, users, attention);
  // About two chunks per thread balance ragged batches; at least 8 users per chunk keep the recurrent
  // product efficient (small batches then split by direction instead); at most 32 keep each thread's
  // scratch near 18 MiB at L = 100 (it is kept for reuse).
  const int balanced = (in.batch + 2 * threads - 1) / (2 * threads);
  const int size = std::max(1, std::min(32, std::max(balanced, std::min(in.batch, 8))));
  const int chunks = (in.batch + size - 1) / size;
  if (chunks >= threads || m.directions == 1) {
    // Throughput mode: a chunk is one item, done start to finish by one thread in its own scratch.
    parallel_for(chunks, threads, [&](int, int c) {
      const Chunk ch = enc.chunk(c, size);
      enc.gather(ch, tls_chunk);
      for (int d = 0; d < m.directions; ++d) enc.direction(ch, tls_chunk, d);
      enc.attend(ch, tls_chunk);
    });
    return;
  }
  // Latency mode: few chunks, so the directions of each chunk run in parallel on shared scratch.
  std::vector<ChunkScratch>& shared = tls_shared;
  if (static_cast<int>(shared.size()) < chunks) shared.resize(chunks);
  for (int c = 0; c < chunks; ++c) enc.gather(enc.chunk(c, size), shared[c]);
  parallel_for(chunks * 2, threads, [&](int, int item) { enc.direction(enc.chunk(item / 2, size), shared[item / 2], item % 2); });
  // The attention's product over the steps, in two halves of the rows (each with its own bf16 scratch).
  parallel_for(chunks * 2, threads, [&](int, int item) {
    const Chunk ch = enc.chunk(item / 2, size);
    const int half = item % 2, mid = ch.n / 2;
    ChunkScratch& s = shared[item / 2];
    enc.scores(s, half == 0 ? 0 : mid, half == 0 ? mid : ch.n, s.dir[half].pairs);
  });
  parallel_for(chunks, threads, [&](int, int c) { enc.pool(enc.chunk(c, size), shared[c]); });
}

}  // namespace dupn
