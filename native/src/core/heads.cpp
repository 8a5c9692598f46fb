// Task heads. Scoring is decoupled (docs/model.md, Heads): the first layer's W_U·U + b is computed once per user,
// W_t·t (+ W_d·dense) once per candidate, then the remaining layers per candidate.
#include <algorithm>
#include <cstring>
#include <vector>

#include "activations.h"
#include "packed_model.h"
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



// Runs `layers` (ReLU before each) on M rows whose previous pre-activations are in `z0` (M × width);
// returns a pointer to the M × last-width result (inside z0 or `tmp`).
float* run_layers(const KernelTable& k, const std::vector<PackedLayer>& layers, size_t from, int width, int M,
                  AlignedFloats& z0, AlignedFloats& tmp) {
  float* cur = z0.data();
  for (size_t li = from; li < layers.size(); ++li) {
    const PackedLayer& l = layers[li];
    float* next = grow(cur == z0.data() ? tmp : z0, static_cast<size_t>(M) * l.out);
    if (l.out == 1) {
      k.relu_dot(M, width, cur, width, l.wt.data(), l.b[0], next);
      cur = next;
      width = 1;
      continue;
    }
    relu(cur, static_cast<long>(M) * width);
    k.sgemm(M, l.out, width, cur, width, l.wt.data(), next, l.out, false, l.b.data());
    cur = next;
    width = l.out;
  }
  return cur;
}

float* run_rest(const KernelTable& k, const Head& h, int M, AlignedFloats& z0, AlignedFloats& tmp) {
  return run_layers(k, h.rest, 0, h.first_user.out, M, z0, tmp);
}

// A whole MLP on M input rows x (M × first.in): `first` (with its bias), then `layers` from `from` on;
// returns the M × last-width result (inside z0 or tmp).
float* run_mlp(const KernelTable& k, const PackedLayer& first, const std::vector<PackedLayer>& layers, size_t from, const float* x,
               int M, AlignedFloats& z0, AlignedFloats& tmp) {
  float* z = grow(z0, static_cast<size_t>(M) * first.out + 1);
  k.sgemm(M, first.out, first.in, x, first.in, first.wt.data(), z, first.out, false, first.b.data());
  return run_layers(k, layers, from, first.out, M, z0, tmp);
}

// The MLP over user vectors of a multiclass or retrieval head (its first layer sees U alone).
float* run_user_mlp(const KernelTable& k, const Head& h, const float* users, int B, AlignedFloats& z0, AlignedFloats& tmp) {
  return run_mlp(k, h.first_user, h.rest, 0, users, B, z0, tmp);
}

// The item tower over M rows of target embeddings `t` (M × target_dim); result M × outputs.
float* run_item_tower(const KernelTable& k, const Head& h, const float* t, int M, AlignedFloats& z0, AlignedFloats& tmp) {
  return run_mlp(k, h.item_tower[0], h.item_tower, 1, t, M, z0, tmp);
}

// Concatenated target embeddings of candidate i (`dst` gets target_dim floats).
void gather_target(const Model& m, const Head& h, const int32_t* ids, float* dst) {
  for (int f : h.target_fields) {
    const Table& tab = m.item_tables[f];
    if (tab.dim == 0) continue;
    tab.copy_row(ids[f], dst);
    dst += tab.dim;
  }
}

// Rows of width W for candidates [c0, c0 + M) into `out`: from the cache, or `project(t, n)` over the gathered
// target embeddings of the n misses (it returns n × W), which then enter the cache. The same arithmetic with or
// without the cache, so a cached candidate scores bit for bit as an uncached one.
template <typename Project>
void cached_rows(const Model& m, const Head& h, const CandidateBatch& in, int c0, int M, int W, float* out, Project project) {
  const int F = m.item_fields(), T = static_cast<int>(h.target_fields.size());
  ScoreScratch& sc = tls_score;
  float* t = grow(sc.t, static_cast<size_t>(M) * h.target_dim + 1);
  int32_t* key = grow(sc.key, static_cast<size_t>(T) + 1);
  std::vector<int>& missed = sc.missed;
  missed.clear();
  for (int i = 0; i < M; ++i) {
    const int32_t* ids = in.items + static_cast<int64_t>(c0 + i) * F;
    for (int j = 0; j < T; ++j) key[j] = ids[h.target_fields[j]];
    if (h.cache && h.cache->get(key, out + static_cast<size_t>(i) * W)) continue;
    gather_target(m, h, ids, t + missed.size() * h.target_dim);
    missed.push_back(i);
  }
  if (missed.empty()) return;
  const float* v = project(t, static_cast<int>(missed.size()));
  for (size_t r = 0; r < missed.size(); ++r) {
    const float* row = v + r * W;
    std::memcpy(out + static_cast<size_t>(missed[r]) * W, row, sizeof(float) * W);
    if (h.cache) {
      const int32_t* ids = in.items + static_cast<int64_t>(c0 + missed[r]) * F;
      for (int j = 0; j < T; ++j) key[j] = ids[h.target_fields[j]];
      h.cache->put(key, row);
    }
  }
}

// Item vectors of candidates [c0, c0 + M) into `out` (M × outputs).
void item_block(const Model& m, const KernelTable& k, const Head& h, const CandidateBatch& in, int c0, int M, float* out) {
  ScoreScratch& sc = tls_score;
  cached_rows(m, h, in, c0, M, h.outputs, out, [&](const float* t, int n) { return run_item_tower(k, h, t, n, sc.z0, sc.tmp); });
}

}  // namespace

void score(const Model& m, const KernelTable& k, const std::vector<ScoreJob>& jobs, const float* user,
           const CandidateBatch& in, int threads) {
  const int heads = static_cast<int>(jobs.size());
  // W_U·U + b of every head, once for all candidates; the caller's thread computes them, workers only read.
  size_t total = 0;
  for (const ScoreJob& j : jobs) total += static_cast<size_t>(std::max(j.head->first_user.out, j.head->outputs));
  float* bases = grow(tls_score.base, total + 1);
  const float** base_of = grow(tls_score.base_of, static_cast<size_t>(heads) + 1);
  for (int j = 0, off = 0; j < heads; ++j) {
    const Head& h = *jobs[static_cast<size_t>(j)].head;
    float* b = bases + off;
    base_of[j] = b;
    if (h.kind == TaskKind::Retrieval) {
      // The query vector; this thread's scratch is free again before the candidate loop uses it.
      std::memcpy(b, run_user_mlp(k, h, user, 1, tls_score.z0, tls_score.tmp), sizeof(float) * h.outputs);
      off += h.outputs;
      continue;
    }
    k.sgemm(1, h.first_user.out, m.user_dim, user, m.user_dim, h.first_user.wt.data(), b, h.first_user.out, false, h.first_user.b.data());
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
    const int W = h.first_user.out;
    const int c0 = (item % blocks) * kCandidateBlock, M = std::min(in.count, c0 + kCandidateBlock) - c0;
    ScoreScratch& sc = tls_score;
    if (h.kind == TaskKind::Retrieval) {
      const int D = h.outputs;
      float* v = grow(sc.p, static_cast<size_t>(M) * D + 1);
      item_block(m, k, h, in, c0, M, v);
      for (int i = 0; i < M; ++i) {
        const float* row = v + static_cast<size_t>(i) * D;
        float s = 0.0f;
        for (int c = 0; c < D; ++c) s += base[c] * row[c];
        const float* d = in.dense + static_cast<int64_t>(c0 + i) * h.dense;
        for (int c = 0; c < h.dense; ++c) s += h.dense_w[c] * d[c];
        out[c0 + i] = s;
      }
      return;
    }
    float* p = grow(sc.p, static_cast<size_t>(M) * W);
    float* z = grow(sc.z0, static_cast<size_t>(M) * W);
    // z0 = W_t·t (cached or computed), + W_d·dense, + (W_U·U + b).
    cached_rows(m, h, in, c0, M, W, z, [&](const float* t, int n) {
      if (h.target_dim > 0) k.sgemm(n, W, h.target_dim, t, h.target_dim, h.first_target.wt.data(), p, W, false, nullptr);
      else std::fill(p, p + static_cast<size_t>(n) * W, 0.0f);
      return p;
    });
    if (h.dense > 0)
      k.sgemm(M, W, h.dense, in.dense + static_cast<int64_t>(c0) * h.dense, h.dense, h.first_dense.wt.data(), z, W, true, nullptr);
    for (int i = 0; i < M; ++i) {
      float* row = z + static_cast<size_t>(i) * W;
      for (int c = 0; c < W; ++c) row[c] += base[c];
    }
    const float* y = run_rest(k, h, M, sc.z0, sc.tmp);
    for (int i = 0; i < M; ++i) out[c0 + i] = h.kind == TaskKind::Binary ? sigmoid(y[i]) : y[i];
  });
}

void predict(const Model&, const KernelTable& k, const Head& h, const float* users, int batch, float* out) {
  // The calling thread's scoring scratch (predict runs no parallel loop): a warm call allocates nothing.
  const float* y = run_user_mlp(k, h, users, batch, tls_score.z0, tls_score.tmp);
  if (h.kind == TaskKind::Retrieval) {
    std::memcpy(out, y, sizeof(float) * static_cast<size_t>(batch) * h.outputs);
    return;
  }
  for (int b = 0; b < batch; ++b) {
    const float* row = y + static_cast<size_t>(b) * h.outputs;
    float* p = out + static_cast<size_t>(b) * h.outputs;
    const float top = *std::max_element(row, row + h.outputs);
    float total = 0.0f;
    for (int c = 0; c < h.outputs; ++c) total += (p[c] = std::exp(row[c] - top));
    for (int c = 0; c < h.outputs; ++c) p[c] /= total;
  }
}

void item_vectors(const Model& m, const KernelTable& k, const Head& h, const CandidateBatch& in, float* out, int threads) {
  const int blocks = (in.count + kCandidateBlock - 1) / kCandidateBlock;
  parallel_for(blocks, threads, [&](int, int b) {
    const int c0 = b * kCandidateBlock;
    item_block(m, k, h, in, c0, std::min(in.count, c0 + kCandidateBlock) - c0, out + static_cast<size_t>(c0) * h.outputs);
  });
}

int top_k(const KernelTable& kt, const float* blocked, int64_t n, int dim, int block, const float* query, int k,
          const uint8_t* skip, int32_t* index, float* score, int threads) {
  if (k <= 0 || n <= 0) return 0;
  // Each block keeps its own k best (a min-heap on (score, -row)), merged at the end: one pass over memory,
  // the scores of a block as one 1 × rows GEMM on the kernel path.
  using Entry = std::pair<float, int64_t>;
  auto better = [](const Entry& a, const Entry& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  const int parts = static_cast<int>((n + block - 1) / block);
  std::vector<std::vector<Entry>> best(static_cast<size_t>(parts));
  parallel_for(parts, threads, [&](int, int p) {
    std::vector<Entry>& heap = best[static_cast<size_t>(p)];
    heap.reserve(static_cast<size_t>(k) + 1);
    const int64_t r0 = static_cast<int64_t>(p) * block;
    const int rows = static_cast<int>(std::min<int64_t>(n, r0 + block) - r0);
    float* s = grow(tls_score.tmp, static_cast<size_t>(rows));
    kt.sgemm(1, rows, dim, query, dim, blocked + r0 * dim, s, rows, false, nullptr);
    for (int i = 0; i < rows; ++i) {
      const int64_t r = r0 + i;
      if (skip && skip[r]) continue;
      const Entry e{s[i], r};
      if (static_cast<int>(heap.size()) < k) {
        heap.push_back(e);
        std::push_heap(heap.begin(), heap.end(), better);
      } else if (better(e, heap.front())) {
        std::pop_heap(heap.begin(), heap.end(), better);
        heap.back() = e;
        std::push_heap(heap.begin(), heap.end(), better);
      }
    }
  });
  std::vector<Entry> all;
  for (const auto& b : best) all.insert(all.end(), b.begin(), b.end());
  const int found = static_cast<int>(std::min<size_t>(all.size(), static_cast<size_t>(k)));
  std::partial_sort(all.begin(), all.begin() + found, all.end(), better);
  for (int i = 0; i < found; ++i) {
    index[i] = static_cast<int32_t>(all[static_cast<size_t>(i)].second);
    score[i] = all[static_cast<size_t>(i)].first;
  }
  return found;
}

}  // namespace dupn
