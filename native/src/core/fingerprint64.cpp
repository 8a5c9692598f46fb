// FarmHash Fingerprint64 (farmhashna::Hash64), written from the published
// algorithm. All arithmetic is on unsigned 64-bit values (wrap-around is
// intended); all loads go through memcpy, so any alignment is fine.
#include "dupn/fingerprint64.h"

#include <cstring>
#include <utility>

namespace dupn {
namespace {

constexpr uint64_t k0 = 0xc3a5c85c97cb3127ULL;
constexpr uint64_t k1 = 0xb492b66fbe98f273ULL;
constexpr uint64_t k2 = 0x9ae16a3b2f90404fULL;

#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define DUPN_FP_BIG_ENDIAN 1
#endif

// Little-endian loads, whatever the host byte order.
inline uint64_t load64(const uint8_t* p) noexcept {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
#ifdef DUPN_FP_BIG_ENDIAN
  v = __builtin_bswap64(v);
#endif
  return v;
}

inline uint32_t load32(const uint8_t* p) noexcept {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
#ifdef DUPN_FP_BIG_ENDIAN
  v = __builtin_bswap32(v);
#endif
  return v;
}

// Rotate right; shift is always a constant in 1..63 here.
inline uint64_t rotr(uint64_t v, unsigned shift) noexcept {
  return (v >> shift) | (v << (64 - shift));
}

inline uint64_t shift_mix(uint64_t v) noexcept { return v ^ (v >> 47); }

// Murmur-inspired mix of two words with a length-dependent multiplier.
inline uint64_t mix16(uint64_t u, uint64_t v, uint64_t mul) noexcept {
  uint64_t a = (u ^ v) * mul;
  a ^= a >> 47;
  uint64_t b = (v ^ a) * mul;
  b ^= b >> 47;
  return b * mul;
}

uint64_t hash_0_to_16(const uint8_t* s, size_t len) noexcept {
  if (len >= 8) {
    const uint64_t mul = k2 + len * 2;
    const uint64_t a = load64(s) + k2;
    const uint64_t b = load64(s + len - 8);
    const uint64_t c = rotr(b, 37) * mul + a;
    const uint64_t d = (rotr(a, 25) + b) * mul;
    return mix16(c, d, mul);
  }
  if (len >= 4) {
    const uint64_t mul = k2 + len * 2;
    const uint64_t a = load32(s);  // widened before the shift
    return mix16(len + (a << 3), load32(s + len - 4), mul);
  }
  if (len > 0) {
    const uint32_t first = s[0];
    const uint32_t middle = s[len >> 1];
    const uint32_t last = s[len - 1];
    const uint32_t y = first + (middle << 8);
    const uint32_t z = static_cast<uint32_t>(len) + (last << 2);
    return shift_mix(uint64_t{y} * k2 ^ uint64_t{z} * k0) * k2;
  }
  return k2;
}

uint64_t hash_17_to_32(const uint8_t* s, size_t len) noexcept {
  const uint64_t mul = k2 + len * 2;
  const uint64_t a = load64(s) * k1;
  const uint64_t b = load64(s + 8);
  const uint64_t c = load64(s + len - 8) * mul;
  const uint64_t d = load64(s + len - 16) * k2;
  return mix16(rotr(a + b, 43) + rotr(c, 30) + d, a + rotr(b + k2, 18) + c, mul);
}

uint64_t hash_33_to_64(const uint8_t* s, size_t len) noexcept {
  const uint64_t mul = k2 + len * 2;
  const uint64_t a = load64(s) * k2;
  const uint64_t b = load64(s + 8);
  const uint64_t c = load64(s + len - 8) * mul;
  const uint64_t d = load64(s + len - 16) * k2;
  const uint64_t y = rotr(a + b, 43) + rotr(c, 30) + d;
  const uint64_t z = mix16(y, a + rotr(b + k2, 18) + c, mul);
  const uint64_t e = load64(s + 16) * mul;
  const uint64_t f = load64(s + 24);
  const uint64_t g = (y + load64(s + len - 32)) * mul;
  const uint64_t h = (z + load64(s + len - 24)) * mul;
  return mix16(rotr(e + f, 43) + rotr(g, 30) + h, e + rotr(f + a, 18) + g, mul);
}

using Pair = std::pair<uint64_t, uint64_t>;

// Hash 32 bytes at s together with two seeds into a pair of words.
inline Pair weak32(const uint8_t* s, uint64_t a, uint64_t b) noexcept {
  const uint64_t w = load64(s);
  const uint64_t x = load64(s + 8);
  const uint64_t y = load64(s + 16);
  const uint64_t z = load64(s + 24);
  a += w;
  b = rotr(b + a + z, 21);
  const uint64_t c = a;
  a += x;
  a += y;
  b += rotr(a, 44);
  return {a + z, b + c};
}

uint64_t hash_long(const uint8_t* s, size_t len) noexcept {
  // len > 64. State: x, y, z plus two 128-bit lanes v, w.
  constexpr uint64_t seed = 81;
  uint64_t x = seed;
  uint64_t y = seed * k1 + 113;
  uint64_t z = shift_mix(y * k2 + 113) * k2;
  Pair v{0, 0};
  Pair w{0, 0};
  x = x * k2 + load64(s);

  // Whole 64-byte blocks, leaving 1..64 bytes; the final step rehashes the
  // last 64 bytes of the input (overlapping the previous block if needed).
  const size_t tail = (len - 1) & 63;
  const uint8_t* const end = s + ((len - 1) / 64) * 64;
  const uint8_t* const last64 = end + tail - 63;

  do {
    x = rotr(x + y + v.first + load64(s + 8), 37) * k1;
    y = rotr(y + v.second + load64(s + 48), 42) * k1;
    x ^= w.second;
    y += v.first + load64(s + 40);
    z = rotr(z + w.first, 33) * k1;
    v = weak32(s, v.second * k1, x + w.first);
    w = weak32(s + 32, z + w.second, y + load64(s + 16));
    std::swap(z, x);
    s += 64;
  } while (s != end);

  const uint64_t mul = k1 + ((z & 0xff) << 1);
  s = last64;
  w.first += tail;
  v.first += w.first;
  w.first += v.first;
  x = rotr(x + y + v.first + load64(s + 8), 37) * mul;
  y = rotr(y + v.second + load64(s + 48), 42) * mul;
  x ^= w.second * 9;
  y += v.first * 9 + load64(s + 40);
  z = rotr(z + w.first, 33) * mul;
  v = weak32(s, v.second * mul, x + w.first);
  w = weak32(s + 32, z + w.second, y + load64(s + 16));
  std::swap(z, x);
  return mix16(mix16(v.first, w.first, mul) + shift_mix(y) * k0 + z,
               mix16(v.second, w.second, mul) + x, mul);
}

}  // namespace

uint64_t fingerprint64(const char* data, size_t len) noexcept {
  const uint8_t* s = reinterpret_cast<const uint8_t*>(data);
  if (len <= 16) return hash_0_to_16(s, len);
  if (len <= 32) return hash_17_to_32(s, len);
  if (len <= 64) return hash_33_to_64(s, len);
  return hash_long(s, len);
}

}  // namespace dupn
