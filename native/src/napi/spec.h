#pragma once
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "convert.h"
#include "dupn/model.h"

namespace dupn_napi {

Napi::Object obj(const Napi::Value& v, const std::string& what);

// The spec's dimensions, tables, LSTM, attention and heads (projection cache, bf16 and gate block are
// the caller's to set).
dupn::ModelSpec parse_spec(const Napi::Object& s, std::vector<Napi::ObjectReference>& refs);

// User columns {lengths, items, properties, queryOffsets, queryTokens, profile}, copied (convert.h: copy_of);
// `what` names them in errors ("columns", "batch.users").
struct UserColumns {
  std::vector<int32_t> lengths, items, properties, query_offsets, query_tokens, profile;
  // A view of the copies (valid while this lives).
  dupn::UserBatch batch() const;
};
std::shared_ptr<const UserColumns> user_columns(const Napi::Value& v, const std::string& what);

}  // namespace dupn_napi
