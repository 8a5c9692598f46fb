// Shortest round-trip decimals of float32 values, written as JavaScript writes numbers.
//
// Not std::to_chars: the prebuilt binaries are compiled by Debian 11's g++ 10, whose library has no
// floating-point to_chars. The digits come from exact integer arithmetic on the float's rounding interval
// (the interval of reals that round to it): scale the interval by a power of ten so its ends are integers of
// about ten digits, then drop trailing digits while some number with fewer digits still lies inside it, and
// round the last one. Every quantity is exact (128-bit products, shifts and remainders), so there is no
// rounding to reason about; values below about 1e-33, where the scaling would overflow 128 bits, take a slow
// path that tries 1 to 9 significant digits with snprintf and reads each back with strtof. The two paths are
// checked against each other and against std::to_chars where the compiler has it (native/test).
#include "dupn/json_numbers.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace dupn {
namespace {

using u128 = unsigned __int128;

// 5^0 … 5^55 (5^55 < 2^128).
struct Pow5 {
  u128 v[56];
  constexpr Pow5() : v() {
    v[0] = 1;
    for (int i = 1; i < 56; ++i) v[i] = v[i - 1] * 5;
  }
};
constexpr Pow5 kPow5;
inline u128 pow5(int n) { return kPow5.v[n]; }

// floor(x · 2^e2 / 10^q) and whether that division left no remainder, for 0 < x < 2^27. Returns false when
// the exact computation would not fit in 128 bits (then the caller takes the slow path).
bool scaled(uint64_t x, int e2, int q, uint64_t* out, bool* exact) {
  if (q <= 0) {
    // x · 5^-q · 2^(e2 - q): a product, then a shift.
    if (-q > 43) return false;  // 5^44 · 2^27 overflows
    const u128 n = static_cast<u128>(x) * pow5(-q);
    const int s = e2 - q;
    if (s >= 0) {
      if (s >= 64) return false;
      const u128 v = n << s;
      if ((v >> s) != n || (v >> 64) != 0) return false;
      *out = static_cast<uint64_t>(v);
      *exact = true;
      return true;
    }
    const int r = -s;
    if (r >= 128) {
      *out = 0;
      *exact = n == 0;
      return true;
    }
    const u128 v = n >> r;
    if ((v >> 64) != 0) return false;
    *out = static_cast<uint64_t>(v);
    *exact = (n & ((static_cast<u128>(1) << r) - 1)) == 0;
    return true;
  }
  // q > 0 happens for values of 1e10 and more, where e2 - q >= 0: x · 2^(e2 - q) / 5^q.
  const int s = e2 - q;
  if (s < 0 || s > 101 || q > 55) return false;
  const u128 n = static_cast<u128>(x) << s;
  const u128 d = pow5(q);
  const u128 v = n / d;
  if ((v >> 64) != 0) return false;
  *out = static_cast<uint64_t>(v);
  *exact = n % d == 0;
  return true;
}

// The shortest digits of a finite positive float: value ≈ digits · 10^exponent. False if out of the fast range.
bool shortest_fast(float f, uint64_t* digits, int* exponent) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const uint32_t frac = bits & 0x7fffffu;
  const int biased = static_cast<int>((bits >> 23) & 0xffu);
  const uint32_t m = biased == 0 ? frac : (frac | 0x800000u);
  const int e = (biased == 0 ? 1 : biased) - 150;
  // The interval [mm, mp] · 2^e2 around mv · 2^e2 (the value): half an ulp either side, a quarter below at
  // a power of two (its lower neighbour is closer). Round-half-even: the ends belong to it when m is even.
  const int e2 = e - 2;
  const uint64_t mv = 4ull * m;
  const uint64_t mp = mv + 2;
  const uint64_t mm = mv - 1 - ((frac != 0 || biased <= 1) ? 1 : 0);
  const bool accept = (m % 2) == 0;
  // Ten to twelve digits to start from: floor(log10 2^k) = floor(k · 78913 / 2^18) for |k| < 1650, with k the
  // value's binary exponent (so off by at most one from the value's decimal exponent).
  const int k = e + 31 - __builtin_clz(m);
  const int q = ((k * 78913) >> 18) - 10;
  uint64_t vr, vp, vm;
  bool vrExact, vpExact, vmExact;
  if (!scaled(mv, e2, q, &vr, &vrExact) || !scaled(mp, e2, q, &vp, &vpExact) || !scaled(mm, e2, q, &vm, &vmExact)) return false;
  if (!accept && vpExact) --vp;  // the upper end itself does not round to f
  bool vmZeros = accept && vmExact;
  bool vrZeros = vrExact;
  int removed = 0;
  uint64_t last = 0;
  const auto drop = [&] {
    vrZeros &= last == 0;
    last = vr % 10;
    vr /= 10;
    vp /= 10;
    vm /= 10;
    ++removed;
  };
  while (vp / 10 > vm / 10) {
    vmZeros &= vm % 10 == 0;
    drop();
  }
  // The lower end is exact and belongs to the interval: its trailing zeros can go too.
  if (vmZeros)
    while (vm % 10 == 0 && vm > 0) drop();
  if (vrZeros && last == 5 && vr % 2 == 0) last = 4;  // exactly half: to even
  const bool up = (vr == vm && !vmZeros) || last >= 5;
  *digits = vr + (up ? 1 : 0);
  *exponent = q + removed;
  return true;
}

// The same by trial: for 1..9 significant digits, the correctly rounded decimal (glibc's printf is exact, ties
// to even) if it reads back to f, else a neighbour in the last digit that does (at a power of two the interval
// is lopsided: the nearest decimal may fall below it while the next one up is inside); the first length that
// has one.
void shortest_slow(float f, uint64_t* digits, int* exponent) {
  char buf[48];
  for (int p = 1; p <= 9; ++p) {
    std::snprintf(buf, sizeof buf, "%.*e", p - 1, static_cast<double>(f));
    uint64_t d = 0;
    const char* c = buf;
    for (; *c != 'e'; ++c)
      if (*c >= '0' && *c <= '9') d = d * 10 + static_cast<uint64_t>(*c - '0');
    const int x = std::atoi(c + 1) - (p - 1);
    for (const uint64_t candidate : {d, d - 1, d + 1}) {
      if (candidate == 0) continue;
      std::snprintf(buf, sizeof buf, "%llue%d", static_cast<unsigned long long>(candidate), x);
      if (std::strtof(buf, nullptr) != f) continue;
      *digits = candidate;
      *exponent = x;
      return;
    }
    if (p == 9) {  // nine digits always read back; kept for completeness
      *digits = d;
      *exponent = x;
    }
  }
}

// digits · 10^exponent as JavaScript's Number.prototype.toString writes it (ECMA-262 Number::toString):
// plain between 1e-7 and 1e21, else d.ddde±x.
void append_decimal(std::string& out, uint64_t digits, int exponent) {
  while (digits >= 10 && digits % 10 == 0) {
    digits /= 10;
    ++exponent;
  }
  char d[24];
  int k = 0;
  for (uint64_t v = digits; v > 0 || k == 0; v /= 10) d[k++] = static_cast<char>('0' + v % 10);
  for (int i = 0; i < k / 2; ++i) std::swap(d[i], d[k - 1 - i]);
  const int n = exponent + k;  // value = 0.d1d2… · 10^n
  if (k <= n && n <= 21) {
    out.append(d, static_cast<size_t>(k));
    out.append(static_cast<size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out.append(d, static_cast<size_t>(n));
    out.push_back('.');
    out.append(d + n, static_cast<size_t>(k - n));
  } else if (-6 < n && n <= 0) {
    out.append("0.", 2);
    out.append(static_cast<size_t>(-n), '0');
    out.append(d, static_cast<size_t>(k));
  } else {
    out.push_back(d[0]);
    if (k > 1) {
      out.push_back('.');
      out.append(d + 1, static_cast<size_t>(k - 1));
    }
    out.push_back('e');
    out.push_back(n - 1 < 0 ? '-' : '+');
    const int x = std::abs(n - 1);  // at most 45
    if (x >= 10) out.push_back(static_cast<char>('0' + x / 10));
    out.push_back(static_cast<char>('0' + x % 10));
  }
}

void append_row(std::string& out, const float* v, size_t n) {
  out.push_back('[');
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out.push_back(',');
    append_float32(out, v[i]);
  }
  out.push_back(']');
}

void append_float32_by(std::string& out, float f, bool fast) {
  if (!std::isfinite(f)) {
    out.append("null", 4);
    return;
  }
  // -0 is written as 0, as JavaScript (and JSON.stringify) write it.
  if (f == 0) {
    out.push_back('0');
    return;
  }
  if (f < 0) out.push_back('-');
  const float a = std::fabs(f);
  uint64_t digits;
  int exponent;
  if (!fast || !shortest_fast(a, &digits, &exponent)) shortest_slow(a, &digits, &exponent);
  append_decimal(out, digits, exponent);
}

}  // namespace

void append_float32(std::string& out, float f) { append_float32_by(out, f, true); }

void append_float32_slow(std::string& out, float f) { append_float32_by(out, f, false); }

void append_float32_json(std::string& out, const float* values, size_t n, size_t row) {
  // Up to 15 characters a value ("-1.2345678e-38" and a comma).
  out.reserve(out.size() + n * 16 + 2 + (row > 0 ? 2 * (n / row + 1) : 0));
  if (row == 0) {
    append_row(out, values, n);
    return;
  }
  out.push_back('[');
  for (size_t r = 0; r < n / row; ++r) {
    if (r > 0) out.push_back(',');
    append_row(out, values + r * row, row);
  }
  out.push_back(']');
}

}  // namespace dupn
