#pragma once
#include <napi.h>

#include <vector>

#include "convert.h"
#include "dupn/model.h"

namespace dupn_napi {

Napi::Object obj(const Napi::Value& v, const std::string& what);

// The spec's dimensions, tables, LSTM, attention and heads (projection cache, bf16 and gate block are
// the caller's to set).
dupn::ModelSpec parse_spec(const Napi::Object& s, std::vector<Napi::ObjectReference>& refs);

// User columns {lengths, items, properties, queryOffsets, queryTokens, profile} read in place.
dupn::UserBatch user_batch(const Napi::Value& v);

}  // namespace dupn_napi
