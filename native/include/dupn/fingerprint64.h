// FarmHash Fingerprint64 (the farmhashna::Hash64 path).
//
// Categorical ids (item, shop, brand, ...) are hashed into embedding buckets
// with exactly the function TensorFlow uses in tf.strings.to_hash_bucket_fast:
// bucket = Fingerprint64(utf8_bytes) % num_buckets. Matching it bit-for-bit
// lets models trained in TensorFlow be served here with identical bucket ids.
// Fingerprint64 is a stable, platform-independent value (little-endian byte
// interpretation on every host), so it may be persisted.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dupn {

// Fingerprint64 of the bytes [data, data + len). Any alignment, any length;
// data may be null when len == 0.
uint64_t fingerprint64(const char* data, size_t len) noexcept;

// Same as tf.strings.to_hash_bucket_fast for one string. buckets must be > 0.
inline uint32_t bucket_of(uint64_t fp, uint32_t buckets) { return (uint32_t)(fp % buckets); }

}  // namespace dupn
