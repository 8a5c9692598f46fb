// Standalone check of dupn::append_float32 (native/src/core/json_numbers.cpp): the exact fast path against
// the slow path (snprintf and strtof at 1..9 digits) on random bit patterns and on the awkward values (powers
// of two and ten, the largest and smallest normals and subnormals, their neighbours), and against the C++
// library's shortest std::to_chars where this compiler has it (same digits: the texts name the same double).
// Every text must also read back to its float (strtof). Prints a line per part and PASS at the end.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "dupn/json_numbers.h"

#if defined(__has_include)
#if __has_include(<charconv>)
#include <charconv>
#endif
#endif

namespace {

float from_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// What the library's shortest scientific form reads as, or NAN when the library has none for float.
double library_shortest(float f) {
#if defined(__cpp_lib_to_chars) && __cpp_lib_to_chars >= 201611L
  char buf[64];
  const std::to_chars_result r = std::to_chars(buf, buf + 63, f, std::chars_format::scientific);
  *r.ptr = 0;
  return std::strtod(buf, nullptr);
#else
  (void)f;
  return NAN;
#endif
}

struct Tally {
  long checked = 0, slow = 0, library = 0, library_checked = 0, roundtrip = 0;
};

void check(float f, Tally& t) {
  std::string fast, slow;
  dupn::append_float32(fast, f);
  dupn::append_float32_slow(slow, f);
  ++t.checked;
  if (fast != slow && t.slow++ < 5) std::printf("  %08x: fast %s, slow %s\n", bits_of(f), fast.c_str(), slow.c_str());
  if (!std::isfinite(f)) {
    if (fast != "null") ++t.roundtrip;
    return;
  }
  if (std::strtof(fast.c_str(), nullptr) != f && t.roundtrip++ < 5) std::printf("  %08x: %s does not read back\n", bits_of(f), fast.c_str());
  const double lib = library_shortest(f);
  if (f != 0 && !std::isnan(lib)) {
    ++t.library_checked;
    if (std::strtod(fast.c_str(), nullptr) != lib && t.library++ < 5) std::printf("  %08x: %s, the library's shortest %.17g\n", bits_of(f), fast.c_str(), lib);
  }
}

bool report(const char* what, const Tally& t) {
  const bool ok = t.slow == 0 && t.library == 0 && t.roundtrip == 0;
  std::printf("%s: %ld values, fast = slow %ld/%ld, read back %ld/%ld, library's shortest %ld/%ld %s\n", what, t.checked,
              t.checked - t.slow, t.checked, t.checked - t.roundtrip, t.checked, t.library_checked - t.library, t.library_checked,
              ok ? "PASS" : "FAIL");
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  const long random_count = argc > 1 ? std::atol(argv[1]) : 300000;
  bool ok = true;

  Tally edges;
  std::vector<float> awkward = {0.0f, -0.0f, 1.0f, 0.1f, 0.2f, 0.3f, 1.0f / 3, 2.0f / 3, 0.5f, 16777216.0f, 16777217.0f, 3.4028235e38f,
                                1.17549435e-38f, 1.4e-45f, 5.877472e-39f, 1e-33f, 1e-34f, 1e-40f, 1e21f, 1e-7f, 123456789.0f};
  for (int e = -149; e <= 127; ++e) awkward.push_back(std::ldexp(1.0f, e));
  for (int e = -45; e <= 38; ++e) awkward.push_back(static_cast<float>(std::pow(10.0, e)));
  const size_t base = awkward.size();
  for (size_t i = 0; i < base; ++i) {
    const uint32_t b = bits_of(awkward[i]);
    for (int d = -2; d <= 2; ++d) awkward.push_back(from_bits(b + static_cast<uint32_t>(d)));
  }
  awkward.push_back(NAN);
  awkward.push_back(INFINITY);
  awkward.push_back(-INFINITY);
  for (float f : awkward) {
    check(f, edges);
    check(-f, edges);
  }
  ok &= report("awkward values and their neighbours", edges);

  Tally random;
  uint64_t state = 0x9e3779b97f4a7c15ull;  // splitmix64: fixed, so a failure reproduces
  for (long i = 0; i < random_count; ++i) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    check(from_bits(static_cast<uint32_t>(z ^ (z >> 31))), random);
  }
  ok &= report("random bit patterns", random);

  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
