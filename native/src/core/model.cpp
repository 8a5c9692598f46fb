// Building a Model from borrowed weights: validation of every size, and packing of the dense weights
// into the layouts the kernels read (transposed, gates fused).
#include <string>

#include "pack.h"
#include "packed_model.h"

namespace dupn {
namespace {

bool check_table(const Table& t, const std::string& what, std::string* error) {
  if (t.keys != nullptr) {
    // Sparse: every stored id in range and strictly increasing, so row() finds each and reads inside data.
    bool ok = t.dim > 0 && t.rows >= 1 && t.stored >= 0 && t.stored <= t.rows && (t.stored == 0 || t.data != nullptr);
    for (int64_t i = 0; ok && i < t.stored; ++i) ok = t.keys[i] >= 0 && t.keys[i] < t.rows && (i == 0 || t.keys[i] > t.keys[i - 1]);
    if (!ok) *error = what + ": the row keys of a sparse table must be strictly increasing ids below its row count";
    return ok;
  }
  if (t.dim < 0 || t.rows < 0 || (t.dim > 0 && (t.rows < 1 || t.data == nullptr))) {
    *error = what + ": table is missing or empty";
    return false;
  }
  return true;
}

// Columns [col0, col0 + cols) of a layer's W (out × in), transposed for the kernels.
PackedLayer pack(const DenseIn& d, int col0, int cols, bool with_bias) {
  PackedLayer p;
  p.out = d.out;
  p.in = cols;
  p.wt.resize(static_cast<size_t>(cols) * d.out);
  transpose_columns(d.w, d.out, d.in, col0, cols, p.wt.data());
  if (with_bias) p.b.assign(d.b, d.b + d.out);
  return p;
}

// Checks a stack of layers starting at `width` inputs; returns the last width, or -1 with the first bad
// layer's index in *bad.
int stack_width(const std::vector<DenseIn>& layers, int width, size_t* bad = nullptr) {
  for (size_t k = 0; k < layers.size(); ++k) {
    const DenseIn& d = layers[k];
    if (!d.w || !d.b || d.in != width || d.out < 1) {
      if (bad) *bad = k;
      return -1;
    }
    width = d.out;
  }
  return width;
}

// The two towers of a retrieval head: both end at the same width (the vectors' dimension).
bool check_retrieval(const Model& m, const HeadIn& in, Head& h, const std::string& what, std::string* error) {
  if (h.target_dim == 0 || in.layers.empty() || in.item_layers.empty()) {
    *error = what + ": a retrieval head needs a target with embeddings and layers in both towers";
    return false;
  }
  const int du = stack_width(in.layers, m.user_dim), dt = stack_width(in.item_layers, h.target_dim);
  if (du < 0 || dt < 0 || du != dt) {
    *error = what + ": the user and item towers have the wrong shapes";
    return false;
  }
  if (h.dense < 0 || (h.dense > 0 && !in.dense_w)) {
    *error = what + ": dense weights missing";
    return false;
  }
  h.outputs = du;
  return true;
}

// A checked head's layers for the kernels: the first split by input block (a retrieval head's user tower
// sees U alone), and the projection cache when there is one.
void pack_head(const HeadIn& in, int user_dim, int cache, Head& h) {
  h.first_user = pack(in.layers[0], 0, user_dim, true);
  for (size_t k = 1; k < in.layers.size(); ++k) h.rest.push_back(pack(in.layers[k], 0, in.layers[k].in, true));
  if (h.kind == TaskKind::Retrieval) {
    for (const DenseIn& d : in.item_layers) h.item_tower.push_back(pack(d, 0, d.in, true));
    if (h.dense > 0) h.dense_w.assign(in.dense_w, in.dense_w + h.dense);
    if (cache > 0) h.cache = std::make_unique<ProjectionCache>(cache, static_cast<int>(h.target_fields.size()), h.outputs);
    return;
  }
  h.first_target = pack(in.layers[0], user_dim, h.target_dim, false);
  h.first_dense = pack(in.layers[0], user_dim + h.target_dim, h.dense, false);
  if (cache > 0 && h.target_dim > 0)
    h.cache = std::make_unique<ProjectionCache>(cache, static_cast<int>(h.target_fields.size()), h.first_target.out);
}

// The LSTM and attention weights of a checked spec in the kernels' layouts: fused and transposed, then
// interleaved for the fused recurrent step, and paired as bf16 when the spec asks.
bool pack_shared(const ModelSpec& s, Model& m, std::string* error) {
  const int H = s.hidden, G = 4 * H, K = m.dx + m.dp, A = s.attention_hidden;
  for (int d = 0; d < s.directions; ++d) {
    const LstmIn& l = s.lstm[d];
    Model::Direction& out = m.dir[d];
    out.wxp_t.resize(static_cast<size_t>(K) * G);
    pack_lstm_input(l.wx, l.wp, H, m.dx, m.dp, out.wxp_t.data());
    out.wh_t.resize(static_cast<size_t>(H) * G);
    transpose(l.wh, G, H, out.wh_t.data());
    out.b.assign(l.b, l.b + G);
  }
  m.attn_hp_t.resize(static_cast<size_t>(m.dh + m.dp) * A);
  m.attn_qu_t.resize(static_cast<size_t>(m.dq + m.du) * A);
  pack_attention(s.attn_w, A, m.dh, m.dq, m.du, m.dp, m.attn_hp_t.data(), m.attn_qu_t.data());
  const Bf16Kernels* bf16 = s.bf16 ? bf16_kernels() : nullptr;
  if (s.bf16 && !bf16) {
    *error = "precision bf16 needs a CPU with AVX-512-BF16";
    return false;
  }
  // The bf16 path fuses its step too where its kernels have one for this layout (row-major W_h).
  const bool interleave = s.gate_block > 0 && (!bf16 || (bf16->lstm_step && bf16->gate_block == s.gate_block && !s.wh_block_major));
  if (interleave) {
    // Gate-major column j = gate·H + u moves to block u / gb, gate slot, lane u % gb.
    const int gb = s.gate_block, blocks = (H + gb - 1) / gb;
    m.gate_block = gb;
    m.hp = blocks * gb;
    m.gp = blocks * 4 * gb;
    auto position = [&](int j) { const int gate = j / H, u = j % H; return (u / gb) * 4 * gb + gate * gb + u % gb; };
    for (int d = 0; d < s.directions; ++d) {
      Model::Direction& dir = m.dir[d];
      dir.wxp_i.assign(static_cast<size_t>(K) * m.gp, 0.0f);
      dir.wh_i.assign(static_cast<size_t>(H) * m.gp, 0.0f);
      dir.b_i.assign(static_cast<size_t>(m.gp), 0.0f);
      for (int j = 0; j < G; ++j) {
        const int p = position(j);
        for (int r = 0; r < K; ++r) dir.wxp_i[static_cast<size_t>(r) * m.gp + p] = dir.wxp_t[static_cast<size_t>(r) * G + j];
        // Block-major W_h keeps each block's H × 4·gb strip contiguous: the AVX2 step reads one strip per tile
        // of 3 rows, and rows gp floats apart fell into a few L1 sets and missed (5–8% of B ≥ 8 on AVX2; the
        // AVX-512 step, 6 rows a tile, gained nothing and its B = 1 row loop lost 2%, so it stays row-major).
        const size_t at = s.wh_block_major ? static_cast<size_t>(p / (4 * gb)) * H * 4 * gb + p % (4 * gb) : static_cast<size_t>(p);
        const size_t stride = s.wh_block_major ? static_cast<size_t>(4 * gb) : static_cast<size_t>(m.gp);
        for (int r = 0; r < H; ++r) dir.wh_i[at + static_cast<size_t>(r) * stride] = dir.wh_t[static_cast<size_t>(r) * G + j];
        dir.b_i[p] = dir.b[j];
      }
    }
  }
  if (bf16) {
    m.bf16 = bf16;
    const bool fused = m.gate_block > 0;
    for (int d = 0; d < s.directions; ++d) {
      Model::Direction& dir = m.dir[d];
      dir.wxp_bf = pack_bf16_pairs(fused ? dir.wxp_i.data() : dir.wxp_t.data(), K, fused ? m.gp : G);
      dir.wh_bf = pack_bf16_pairs(fused ? dir.wh_i.data() : dir.wh_t.data(), H, fused ? m.gp : G);
    }
    m.attn_h_bf = pack_bf16_pairs(m.attn_hp_t.data(), m.dh, A);
  }
  m.attn_b.assign(s.attn_b, s.attn_b + A);
  m.attn_v.assign(s.attn_v, s.attn_v + A);
  return true;
}

}  // namespace

std::unique_ptr<Model> Model::build(const ModelSpec& s, std::string* error, Weights weights) {
  auto m = std::make_unique<Model>();
  if (s.hidden < 1 || s.attention_hidden < 1 || s.max_seq_len < 1 || (s.directions != 1 && s.directions != 2)) {
    *error = "invalid model dimensions";
    return nullptr;
  }
  m->max_seq_len = s.max_seq_len;
  m->hidden = s.hidden;
  m->directions = s.directions;
  m->dh = s.hidden * s.directions;
  m->attention_hidden = s.attention_hidden;
  m->item_tables = s.item_tables;
  m->profile_tables = s.profile_tables;
  m->type_table = s.type_table;
  m->gap_table = s.gap_table;
  m->scene_table = s.scene_table;
  m->query_table = s.query_table;

  m->dx = 0;
  for (size_t i = 0; i < s.item_tables.size(); ++i) {
    if (!check_table(s.item_tables[i], "item table " + std::to_string(i), error)) return nullptr;
    m->dx += s.item_tables[i].dim;
  }
  m->du = 0;
  for (size_t i = 0; i < s.profile_tables.size(); ++i) {
    if (!check_table(s.profile_tables[i], "profile table " + std::to_string(i), error)) return nullptr;
    m->du += s.profile_tables[i].dim;
  }
  if (!check_table(s.type_table, "type table", error) || !check_table(s.gap_table, "gap table", error) ||
      !check_table(s.scene_table, "scene table", error) || !check_table(s.query_table, "query table", error))
    return nullptr;
  m->dp = s.type_table.dim + s.gap_table.dim + s.scene_table.dim;
  m->dq = s.query_table.dim;
  m->user_dim = m->dh + m->du + m->dq;
  if (m->dx < 1) {
    *error = "no item field has a non-zero dim";
    return nullptr;
  }

  for (int d = 0; d < s.directions; ++d) {
    const LstmIn& l = s.lstm[d];
    if (!l.wx || !l.wh || !l.b || (m->dp > 0 && !l.wp)) {
      *error = "missing LSTM weights";
      return nullptr;
    }
  }
  if (!s.attn_w || !s.attn_b || !s.attn_v) {
    *error = "missing attention weights";
    return nullptr;
  }
  const bool pack_weights = weights == Weights::Pack;
  if (pack_weights && !pack_shared(s, *m, error)) return nullptr;

  for (size_t hi = 0; hi < s.heads.size(); ++hi) {
    const HeadIn& in = s.heads[hi];
    const std::string what = "head " + std::to_string(hi);
    Head h;
    h.kind = in.kind;
    h.target_fields = in.target_fields;
    const bool retrieval = in.kind == TaskKind::Retrieval;
    h.dense = in.kind == TaskKind::Multiclass ? 0 : in.dense;
    if (in.kind == TaskKind::Multiclass && !in.target_fields.empty()) {
      *error = what + ": a multiclass head has no target";
      return nullptr;
    }
    for (int f : in.target_fields) {
      if (f < 0 || f >= m->item_fields()) {
        *error = what + ": target field index out of range";
        return nullptr;
      }
      h.target_dim += m->item_tables[f].dim;
    }
    if (in.layers.empty() || h.dense < 0) {
      *error = what + ": no layers";
      return nullptr;
    }
    if (retrieval) {
      if (!check_retrieval(*m, in, h, what, error)) return nullptr;
    } else {
      size_t bad = 0;
      const int width = stack_width(in.layers, m->user_dim + h.target_dim + h.dense, &bad);
      if (width < 0) {
        *error = what + ": layer " + std::to_string(bad) + " has the wrong shape";
        return nullptr;
      }
      h.outputs = width;
      if (in.kind != TaskKind::Multiclass && width != 1) {
        *error = what + ": last layer must have one output";
        return nullptr;
      }
    }
    if (pack_weights) pack_head(in, m->user_dim, s.projection_cache, h);
    m->heads.push_back(std::move(h));
  }
  return m;
}

namespace {

std::string check_ids(const int32_t* ids, int64_t count, int stride, int col, int64_t rows, const char* field,
                      const char* table) {
  for (int64_t i = 0; i < count; ++i) {
    const int32_t v = ids[i * stride + col];
    if (v < 0 || v >= rows)
      return std::string(field) + "[" + std::to_string(i * stride + col) + "] = " + std::to_string(v) +
             " is outside the " + table + " table (rows 0.." + std::to_string(rows - 1) + ")";
  }
  return "";
}

}  // namespace

void ModelDeleter::operator()(Model* m) const { delete m; }

ModelPtr build_model(const ModelSpec& spec, std::string* error) { return ModelPtr(Model::build(spec, error).release()); }

int user_dim(const Model& m) { return m.user_dim; }
int item_field_count(const Model& m) { return m.item_fields(); }
int head_count(const Model& m) { return static_cast<int>(m.heads.size()); }
const Head& head_at(const Model& m, int i) { return m.heads[static_cast<size_t>(i)]; }
TaskKind head_kind(const Head& h) { return h.kind; }
int head_outputs(const Head& h) { return h.outputs; }

// The authority on user and candidate columns, since every caller's ids reach the kernels through here; lib/model/columns.ts
// repeats these checks word for word for onnxruntime and the reference (test/column-checks.test.ts compares the two).
std::string validate_users(const Model& m, const UserBatch& in) {
  if (in.batch < 0) return "batch: negative";
  int64_t n = 0;
  for (int b = 0; b < in.batch; ++b) {
    const int32_t len = in.lengths[b];
    if (len < 0 || len > m.max_seq_len)
      return "lengths[" + std::to_string(b) + "] = " + std::to_string(len) + " is outside 0.." + std::to_string(m.max_seq_len);
    n += len;
  }
  const int F = m.item_fields(), P = m.profile_fields();
  if (in.items_len != n * F) return "items: expected " + std::to_string(n * F) + " entries (Σ lengths × item fields), got " + std::to_string(in.items_len);
  if (in.properties_len != n * 3) return "properties: expected " + std::to_string(n * 3) + " entries (Σ lengths × 3), got " + std::to_string(in.properties_len);
  if (in.profile_len != static_cast<int64_t>(in.batch) * P)
    return "profile: expected " + std::to_string(static_cast<int64_t>(in.batch) * P) + " entries (batch × profile fields), got " + std::to_string(in.profile_len);
  if (in.query_offsets[0] != 0) return "queryOffsets[0] must be 0";
  for (int b = 0; b < in.batch; ++b)
    if (in.query_offsets[b + 1] < in.query_offsets[b]) return "queryOffsets[" + std::to_string(b + 1) + "] is smaller than the one before";
  if (in.query_offsets[in.batch] != in.query_token_count)
    return "queryOffsets[" + std::to_string(in.batch) + "] must equal queryTokens.length (" + std::to_string(in.query_token_count) + ")";
  std::string e;
  for (int f = 0; f < F; ++f)
    if (m.item_tables[f].dim > 0 && !(e = check_ids(in.items, n, F, f, m.item_tables[f].rows, "items", "item field")).empty()) return e;
  const Table* props[3] = {&m.type_table, &m.gap_table, &m.scene_table};
  const char* names[3] = {"type", "gap", "scene"};
  for (int p = 0; p < 3; ++p)
    if (props[p]->dim > 0 && !(e = check_ids(in.properties, n, 3, p, props[p]->rows, "properties", names[p])).empty()) return e;
  if (m.dq > 0 && !(e = check_ids(in.query_tokens, in.query_token_count, 1, 0, m.query_table.rows, "queryTokens", "query")).empty())
    return e;
  for (int f = 0; f < P; ++f)
    if (m.profile_tables[f].dim > 0 && !(e = check_ids(in.profile, in.batch, P, f, m.profile_tables[f].rows, "profile", "profile field")).empty())
      return e;
  return "";
}

std::string validate_candidates(const Model& m, const Head& h, const CandidateBatch& in, bool with_dense) {
  const int F = m.item_fields();
  const int dense = with_dense ? h.dense : 0;
  if (in.count < 0) return "candidates: negative count";
  if (in.items_len != static_cast<int64_t>(in.count) * F)
    return "items: expected " + std::to_string(static_cast<int64_t>(in.count) * F) + " entries (candidates × item fields), got " + std::to_string(in.items_len);
  // Heads without dense features ignore the array (it may carry another rank head's features).
  if (dense > 0 && in.dense_len != static_cast<int64_t>(in.count) * dense)
    return "dense: expected " + std::to_string(static_cast<int64_t>(in.count) * dense) + " entries (candidates × denseFeatures), got " + std::to_string(in.dense_len);
  std::string e;
  for (int f : h.target_fields)
    if (!(e = check_ids(in.items, in.count, F, f, m.item_tables[f].rows, "items", "item field")).empty()) return e;
  for (int64_t i = 0; dense > 0 && i < in.dense_len; ++i) {
    const float v = in.dense[i];
    if (!(v == v) || v - v != 0.0f) return "dense[" + std::to_string(i) + "] is not a finite number";
  }
  return "";
}

}  // namespace dupn
