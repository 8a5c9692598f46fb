// Per-head cache of W_t·t, the first-layer projection of a candidate's target embeddings (docs/model.md,
// Heads: decoupled scoring). Direct-mapped by a hash of the candidate's target ids: bounded memory,
// O(1), no allocation after construction; a colliding candidate simply replaces the slot. Striped
// locks make it safe for concurrent score calls on one model.
#pragma once
#include <array>
#include <cstdint>
#include <mutex>
#include <vector>

#include "dupn/aligned.h"

namespace dupn {

class ProjectionCache {
 public:
  ProjectionCache(int capacity, int key_len, int width);

  // Copies the projection cached for `key` (key_len ids) into `out` (width floats); false on a miss.
  bool get(const int32_t* key, float* out);
  void put(const int32_t* key, const float* value);


 private:
  uint64_t slot_of(const int32_t* key) const;

  int capacity_, key_len_, width_;
  std::vector<int32_t> keys_;
  std::vector<uint8_t> valid_;
  AlignedFloats values_;
  std::array<std::mutex, 64> locks_;
};

}  // namespace dupn
