// Task heads. Scoring is decoupled (SPEC §3): the first layer's W_U·U + b is computed once per user,
// W_t·t (+ W_d·dense) once per candidate, then the remaining layers per candidate.
#include <algorithm>
#include <cstring>
#include <vector>

#include "activations.h"
#include "dupn/model.h"
#include "dupn/thread_pool.h"

namespace dupn {
namespace {

constexpr int kCandidateBlock = 128;

// Each thread's scoring scratch, reused across calls (a warm call allocates nothing).
struct ScoreScratch {
  AlignedFloats t, p, z0, tmp, base;
  std::vector<const float*> base_of;
  std::vector<int32_t> key;
  std::vector<int> missed;
};
thread_local ScoreScratch tls_score;



// Runs layers 1.. of a head on M rows whose layer-0 pre-activations are in `z0` (M × first width);
// returns a pointer to the M × outputs result (inside z0 or `tmp`).
float* run_rest(const KernelTable& k, const Head& h, int M, AlignedFloats& z0, AlignedFloats& tmp) {
  float* cur = z0.data();
  int width = h.first_user.out;
  for (const PackedLayer& l : h.rest) {
    float* next = grow(cur == z0.data() ? tmp : z0, static_cast<size_t>(M) * l.out);
    if (l.out == 1) {
      k.relu_dot(M, width, cur, width, l.wt.data(), l.b[0], next);
      cur = next;
      width = 1;
      continue;
    }
    relu(cur, static_cast<long>(M) * width);
    fill_rows(next, M, l.out, l.b.data());
    k.sgemm(M, l.out, width, cur, width, l.wt.data(), next, l.out, true);
    cur = next;
    width = l.out;
  }
  return cur;
}

}  // namespace

void score(const Model& m, const KernelTable& k, const std::vector<ScoreJob>& jobs, const float* user,
           const CandidateBatch& in, int threads) {
  const int F = m.item_fields();
  const int heads = static_cast<int>(jobs.size());
  // W_U·U + b of every head, once for all candidates; the caller's thread computes them, workers only read.
  size_t total = 0;
  for (const ScoreJob& j : jobs) total += static_cast<size_t>(j.head->first_user.out);
  float* bases = grow(tls_score.base, total + 1);
  const float** base_of = grow(tls_score.base_of, static_cast<size_t>(heads) + 1);
  for (int j = 0, off = 0; j < heads; ++j) {
    const Head& h = *jobs[static_cast<size_t>(j)].head;
    float* b = bases + off;
    std::copy(h.first_user.b.begin(), h.first_user.b.end(), b);
    k.sgemm(1, h.first_user.out, m.user_dim, user, m.user_dim, h.first_user.wt.data(), b, h.first_user.out, true);
    base_of[j] = b;
    off += h.first_user.out;
  }

  // One parallel loop over (head, candidate block): one wake-up of the pool for all heads, and a thread that
  // finishes a cheap head's blocks takes the next head's.
  const int blocks = (in.count + kCandidateBlock - 1) / kCandidateBlock;
  parallel_for(blocks * heads, threads, [&](int, int item) {
    const ScoreJob& job = jobs[static_cast<size_t>(item / blocks)];
    const Head& h = *job.head;
    const float* base = base_of[item / blocks];
    float* out = job.out;
    const int W = h.first_user.out, T = static_cast<int>(h.target_fields.size());
    const int c0 = (item % blocks) * kCandidateBlock, M = std::min(in.count, c0 + kCandidateBlock) - c0;
    ScoreScratch& sc = tls_score;
    float* t = grow(sc.t, static_cast<size_t>(M) * h.target_dim + 1);
    float* p = grow(sc.p, static_cast<size_t>(M) * W);
    float* z = grow(sc.z0, static_cast<size_t>(M) * W);
    int32_t* key = grow(sc.key, static_cast<size_t>(T) + 1);
    std::vector<int>& missed = sc.missed;
    missed.clear();
    // z0 = W_t·t (from the cache, or computed for the misses), + W_d·dense, + (W_U·U + b): the same order
    // with or without the cache, so a cached candidate scores bit for bit as an uncached one.
    for (int i = 0; i < M; ++i) {
      const int32_t* ids = in.items + static_cast<int64_t>(c0 + i) * F;
      for (int j = 0; j < T; ++j) key[j] = ids[h.target_fields[j]];
      if (h.cache && h.cache->get(key, z + static_cast<size_t>(i) * W)) continue;
      float* dst = t + missed.size() * h.target_dim;
      for (int f : h.target_fields) {
        const Table& tab = m.item_tables[f];
        if (tab.dim == 0) continue;
        std::memcpy(dst, tab.data + static_cast<int64_t>(ids[f]) * tab.dim, sizeof(float) * tab.dim);
        dst += tab.dim;
      }
      missed.push_back(i);
    }
    const int misses = static_cast<int>(missed.size());
    if (misses > 0) {
      if (h.target_dim > 0) k.sgemm(misses, W, h.target_dim, t, h.target_dim, h.first_target.wt.data(), p, W, false);
      else std::fill(p, p + static_cast<size_t>(misses) * W, 0.0f);
      for (int r = 0; r < misses; ++r) {
        const float* row = p + static_cast<size_t>(r) * W;
        std::memcpy(z + static_cast<size_t>(missed[r]) * W, row, sizeof(float) * W);
        if (h.cache) {
          const int32_t* ids = in.items + static_cast<int64_t>(c0 + missed[r]) * F;
          for (int j = 0; j < T; ++j) key[j] = ids[h.target_fields[j]];
          h.cache->put(key, row);
        }
      }
    }
    if (h.dense > 0)
      k.sgemm(M, W, h.dense, in.dense + static_cast<int64_t>(c0) * h.dense, h.dense, h.first_dense.wt.data(), z, W, true);
    for (int i = 0; i < M; ++i) {
      float* row = z + static_cast<size_t>(i) * W;
      for (int c = 0; c < W; ++c) row[c] += base[c];
    }
    const float* y = run_rest(k, h, M, sc.z0, sc.tmp);
    for (int i = 0; i < M; ++i) out[c0 + i] = h.kind == TaskKind::Binary ? sigmoid(y[i]) : y[i];
  });
}

void predict(const Model& m, const KernelTable& k, const Head& h, const float* users, int batch, float* out) {
  const int W = h.first_user.out;
  AlignedFloats z0(static_cast<size_t>(batch) * W), tmp;
  fill_rows(z0.data(), batch, W, h.first_user.b.data());
  k.sgemm(batch, W, m.user_dim, users, m.user_dim, h.first_user.wt.data(), z0.data(), W, true);
  const float* y = run_rest(k, h, batch, z0, tmp);
  for (int b = 0; b < batch; ++b) {
    const float* row = y + static_cast<size_t>(b) * h.outputs;
    float* p = out + static_cast<size_t>(b) * h.outputs;
    const float top = *std::max_element(row, row + h.outputs);
    float total = 0.0f;
    for (int c = 0; c < h.outputs; ++c) total += (p[c] = std::exp(row[c] - top));
    for (int c = 0; c < h.outputs; ++c) p[c] /= total;
  }
}

}  // namespace dupn
