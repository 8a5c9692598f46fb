// The model spec and user columns as JavaScript passes them (lib/native/addon.ts), converted to the core's
// structs with every size checked. Weights are borrowed: `refs` keeps their arrays alive.
#include "spec.h"

#include <string>

namespace dupn_napi {

Napi::Object obj(const Napi::Value& v, const std::string& what) {
  if (!v.IsObject()) throw_code(v.Env(), codes::kInput, what + ": expected an object");
  return v.As<Napi::Object>();
}

namespace {

dupn::Table table(const Napi::Value& v, const std::string& what, std::vector<Napi::ObjectReference>& refs) {
  Napi::Object o = obj(v, what);
  dupn::Table t;
  t.rows = int_arg(o.Get("rows"), (what + ".rows").c_str(), 0, 0x7fffffff);
  t.dim = int_arg(o.Get("dim"), (what + ".dim").c_str(), 0, 1 << 20);
  Napi::Value keys = o.Get("keys");
  Napi::Value rows_data = o.Get("data");
  const bool sparse = !keys.IsUndefined() && !keys.IsNull();
  View<float> data = f32(rows_data, (what + ".data").c_str(), t.dim == 0 || sparse);
  if (sparse) {
    // Sparse (docs/format.md): `keys` names the ids whose rows `data` holds; the core checks their order and range.
    View<int32_t> k = i32(keys, (what + ".keys").c_str());
    if (t.dim == 0) throw_code(v.Env(), codes::kInput, what + ": a table of width 0 has no keys");
    if (data.length != k.length * static_cast<int64_t>(t.dim)) throw_code(v.Env(), codes::kInput, what + ": data must hold one row per key");
    t.keys = k.data;
    t.stored = k.length;
    t.data = k.length > 0 ? data.data : nullptr;
    if (rows_data.IsObject()) refs.push_back(Napi::Persistent(rows_data.As<Napi::Object>()));
    refs.push_back(Napi::Persistent(keys.As<Napi::Object>()));
    return t;
  }
  if (t.dim > 0) {
    if (data.length != t.rows * static_cast<int64_t>(t.dim)) throw_code(v.Env(), codes::kInput, what + ": data has the wrong length");
    t.data = data.data;
    refs.push_back(Napi::Persistent(rows_data.As<Napi::Object>()));
  }
  return t;
}

const float* weights(const Napi::Object& o, const char* key, int64_t expected, const std::string& what) {
  View<float> w = f32(o.Get(key), (what + "." + key).c_str());
  if (w.length != expected)
    throw_code(o.Env(), codes::kInput, what + "." + key + ": expected " + std::to_string(expected) + " values, got " + std::to_string(w.length));
  return w.data;
}

std::vector<dupn::DenseIn> layer_stack(const Napi::Object& ho, const char* key, int64_t width, const std::string& what) {
  Napi::Value layers = ho.Get(key);
  if (!layers.IsArray()) throw_code(ho.Env(), codes::kInput, what + "." + key + ": expected an array");
  std::vector<dupn::DenseIn> out;
  for (uint32_t k = 0; k < layers.As<Napi::Array>().Length(); ++k) {
    const std::string lw = what + "." + key + "[" + std::to_string(k) + "]";
    Napi::Object lo = obj(layers.As<Napi::Array>().Get(k), lw);
    dupn::DenseIn d;
    d.in = static_cast<int>(width);
    d.out = int_arg(lo.Get("out"), (lw + ".out").c_str(), 1, 1 << 20);
    d.w = weights(lo, "w", static_cast<int64_t>(d.out) * width, lw);
    d.b = weights(lo, "b", d.out, lw);
    out.push_back(d);
    width = d.out;
  }
  return out;
}

}  // namespace

std::shared_ptr<const UserColumns> user_columns(const Napi::Value& v, const std::string& what) {
  Napi::Object o = obj(v, what);
  auto c = std::make_shared<UserColumns>();
  auto column = [&](const char* key) { return i32_copy(o.Get(key), (what + "." + key).c_str()); };
  c->lengths = column("lengths");
  c->items = column("items");
  c->properties = column("properties");
  c->query_offsets = column("queryOffsets");
  c->query_tokens = column("queryTokens");
  c->profile = column("profile");
  if (c->lengths.size() > 0x7fffffff) throw_code(v.Env(), codes::kInput, what + ".lengths: too many users");
  if (c->query_offsets.size() != c->lengths.size() + 1)
    throw_code(v.Env(), codes::kInput, what + ".queryOffsets: expected lengths.length + 1 entries");
  return c;
}

dupn::UserBatch UserColumns::batch() const {
  dupn::UserBatch b;
  b.batch = static_cast<int>(lengths.size());
  b.lengths = lengths.data();
  b.items = items.data();
  b.items_len = static_cast<int64_t>(items.size());
  b.properties = properties.data();
  b.properties_len = static_cast<int64_t>(properties.size());
  b.query_offsets = query_offsets.data();
  b.query_tokens = query_tokens.data();
  b.query_token_count = static_cast<int64_t>(query_tokens.size());
  b.profile = profile.data();
  b.profile_len = static_cast<int64_t>(profile.size());
  return b;
}

dupn::ModelSpec parse_spec(const Napi::Object& s, std::vector<Napi::ObjectReference>& refs) {
  Napi::Env env = s.Env();
  dupn::ModelSpec spec;
  spec.max_seq_len = int_arg(s.Get("maxSeqLen"), "maxSeqLen", 1, 1 << 20);
  spec.hidden = int_arg(s.Get("hidden"), "hidden", 1, 1 << 16);
  spec.directions = int_arg(s.Get("directions"), "directions", 1, 2);
  spec.attention_hidden = int_arg(s.Get("attentionHidden"), "attentionHidden", 1, 1 << 16);
  auto tables = [&](const char* key) {
    std::vector<dupn::Table> out;
    Napi::Value arr = s.Get(key);
    if (!arr.IsArray()) throw_code(env, codes::kInput, std::string(key) + ": expected an array");
    Napi::Array a = arr.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(table(a.Get(i), std::string(key) + "[" + std::to_string(i) + "]", refs));
    return out;
  };
  spec.item_tables = tables("itemTables");
  spec.profile_tables = tables("profileTables");
  spec.type_table = table(s.Get("typeTable"), "typeTable", refs);
  spec.gap_table = table(s.Get("gapTable"), "gapTable", refs);
  spec.scene_table = table(s.Get("sceneTable"), "sceneTable", refs);
  spec.query_table = table(s.Get("queryTable"), "queryTable", refs);

  int64_t dx = 0, dp = spec.type_table.dim + spec.gap_table.dim + spec.scene_table.dim, du = 0;
  for (auto& t : spec.item_tables) dx += t.dim;
  for (auto& t : spec.profile_tables) du += t.dim;
  const int64_t H = spec.hidden, dh = H * spec.directions, A = spec.attention_hidden;
  const int64_t user_dim = dh + du + spec.query_table.dim;

  Napi::Value lstm = s.Get("lstm");
  if (!lstm.IsArray() || lstm.As<Napi::Array>().Length() != static_cast<uint32_t>(spec.directions))
    throw_code(env, codes::kInput, "lstm: expected one entry per direction");
  for (int d = 0; d < spec.directions; ++d) {
    const std::string what = "lstm[" + std::to_string(d) + "]";
    Napi::Object l = obj(lstm.As<Napi::Array>().Get(d), what);
    spec.lstm[d].wx = weights(l, "wx", 4 * H * dx, what);
    spec.lstm[d].wp = weights(l, "wp", 3 * H * dp, what);
    spec.lstm[d].wh = weights(l, "wh", 4 * H * H, what);
    spec.lstm[d].b = weights(l, "b", 4 * H, what);
  }
  Napi::Object attn = obj(s.Get("attn"), "attn");
  spec.attn_w = weights(attn, "w", A * (dh + spec.query_table.dim + du + dp), "attn");
  spec.attn_b = weights(attn, "b", A, "attn");
  spec.attn_v = weights(attn, "v", A, "attn");

  Napi::Value heads = s.Get("heads");
  if (!heads.IsArray()) throw_code(env, codes::kInput, "heads: expected an array");
  for (uint32_t i = 0; i < heads.As<Napi::Array>().Length(); ++i) {
    const std::string what = "heads[" + std::to_string(i) + "]";
    Napi::Object ho = obj(heads.As<Napi::Array>().Get(i), what);
    dupn::HeadIn h;
    h.kind = static_cast<dupn::TaskKind>(int_arg(ho.Get("kind"), (what + ".kind").c_str(), 0, 3));
    const bool retrieval = h.kind == dupn::TaskKind::Retrieval;
    h.dense = int_arg(ho.Get("dense"), (what + ".dense").c_str(), 0, 1 << 20);
    Napi::Value tf = ho.Get("targetFields");
    if (!tf.IsArray()) throw_code(env, codes::kInput, what + ".targetFields: expected an array");
    for (uint32_t j = 0; j < tf.As<Napi::Array>().Length(); ++j)
      h.target_fields.push_back(int_arg(tf.As<Napi::Array>().Get(j), (what + ".targetFields").c_str(), 0, static_cast<int32_t>(spec.item_tables.size()) - 1));
    int64_t target = 0;
    for (int f : h.target_fields) target += spec.item_tables[f].dim;
    // A retrieval head's user tower sees U alone, its item tower t alone; other heads see [U ; t ; dense].
    h.layers = layer_stack(ho, "layers", retrieval ? user_dim : user_dim + target + h.dense, what);
    if (retrieval) {
      h.item_layers = layer_stack(ho, "itemLayers", target, what);
      if (h.dense > 0) h.dense_w = weights(ho, "denseW", h.dense, what);
    }
    spec.heads.push_back(std::move(h));
  }

  return spec;
}

}  // namespace dupn_napi
