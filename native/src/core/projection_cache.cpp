#include "projection_cache.h"

#include <cstring>

namespace dupn {

ProjectionCache::ProjectionCache(int capacity, int key_len, int width)
    : capacity_(capacity),
      key_len_(key_len),
      width_(width),
      keys_(static_cast<size_t>(capacity) * key_len),
      valid_(static_cast<size_t>(capacity), 0),
      values_(static_cast<size_t>(capacity) * width) {}

uint64_t ProjectionCache::slot_of(const int32_t* key) const {
  uint64_t h = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < key_len_; ++i) {
    h ^= static_cast<uint32_t>(key[i]);
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 31;
  }
  return h % static_cast<uint64_t>(capacity_);
}

bool ProjectionCache::get(const int32_t* key, float* out) {
  const uint64_t s = slot_of(key);
  std::lock_guard<std::mutex> lock(locks_[s % locks_.size()]);
  if (!valid_[s] || std::memcmp(keys_.data() + s * key_len_, key, sizeof(int32_t) * key_len_) != 0) return false;
  std::memcpy(out, values_.data() + s * width_, sizeof(float) * width_);
  return true;
}

void ProjectionCache::put(const int32_t* key, const float* value) {
  const uint64_t s = slot_of(key);
  std::lock_guard<std::mutex> lock(locks_[s % locks_.size()]);
  std::memcpy(keys_.data() + s * key_len_, key, sizeof(int32_t) * key_len_);
  std::memcpy(values_.data() + s * width_, value, sizeof(float) * width_);
  valid_[s] = 1;
}

}  // namespace dupn
