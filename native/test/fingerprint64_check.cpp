// Standalone check for dupn::fingerprint64 (no dependencies). The test suite
// builds and runs it (test/fingerprint64-native.test.ts, under
// -fsanitize=address,undefined where the compiler has it, so the unaligned
// every-length sweep catches out-of-bounds reads). By hand:
//   g++ -std=c++17 -O2 -Wall -Wextra -Inative/include
//       native/src/core/fingerprint64.cpp native/test/fingerprint64_check.cpp
//       -o /tmp/fp && /tmp/fp
//
// The golden table below is a copy of test/fixtures/fingerprint64.json (a copy
// of the shared testdata; the test checks they agree); inputs are UTF-8 bytes.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "dupn/fingerprint64.h"

namespace {

struct Vector {
  const char* input;
  size_t len;
  uint64_t expected;
};

const Vector kVectors[] = {
    {"",
     0, 0x9ae16a3b2f90404fULL},
    {"a",
     1, 0xb3454265b6df75e3ULL},
    {"ab",
     2, 0xaa8d6e5242ada51eULL},
    {"abc",
     3, 0x24a5b3a074e7f369ULL},
    {"abcd",
     4, 0x1a5502de4a1f8101ULL},
    {"abcde",
     5, 0xc22f4663e54e04d4ULL},
    {"abcdef",
     6, 0xc329379e6a03c2cdULL},
    {"abcdefg",
     7, 0x3c40c92b1ccb7355ULL},
    {"abcdefgh",
     8, 0xfee9d22990c82909ULL},
    {"abcdefghi",
     9, 0x332c8ed4dae5ba42ULL},
    {"0123456789",
     10, 0xad052244b781c4ebULL},
    {"0123456789 ",
     11, 0x3ef4c03514208c77ULL},
    {"0123456789-0",
     12, 0x496841e83a33cc91ULL},
    {"0123456789~01",
     13, 0xd81bcb9f3679ac0cULL},
    {"0123456789#012",
     14, 0x5da5a6a117c606f6ULL},
    {"0123456789@0123",
     15, 0x5361eae17c1ff6bcULL},
    {"0123456789'01234",
     16, 0x4283d4ef43627f64ULL},
    {"0123456789=012345",
     17, 0x46a7416ed4861e3bULL},
    {"0123456789+0123456",
     18, 0xa4abb4e0da2c594cULL},
    {"0123456789*01234567",
     19, 0xcf1c7d3ad54f9215ULL},
    {"0123456789&012345678",
     20, 0x07adf50b2ac764fcULL},
    {"0123456789^0123456789",
     21, 0xdebcba8e6f3eabd1ULL},
    {"0123456789%0123456789\302\243",
     23, 0x4dbd128af51d77e8ULL},
    {"0123456789$0123456789!0",
     23, 0xd78d5f852d522e6aULL},
    {"C is as portable as Stonehedge!!",
     32, 0xb944f8a16261e414ULL},
    {"Discard medicine more than two years old.",
     41, 0xe8f89ab6df9bdd25ULL},
    {"How can you write a big system without C++?  -Paul Glick",
     56, 0x5a0a6efd52e84e2aULL},
    {"The fugacity of a constituent in a mixture of gases at a given temperatu"
     "re is proportional to its mole fraction.  Lewis-Randall Rule",
     132, 0x098eff6958c5e91aULL},
    {"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod "
     "tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim ven"
     "iam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea com"
     "modo consequat. Duis aute irure dolor in reprehenderit in voluptate veli"
     "t esse cillum dolore eu fugiat nulla pariatur. Excepteur sint occaecat c"
     "upidatat non proident, sunt in culpa qui officia deserunt mollit anim id"
     " est laborum.",
     445, 0xc3f02c4ffd5d71e6ULL},
};

struct BucketCase {
  const char* input;
  uint32_t buckets;
  uint32_t expected;
};

// tf.strings.to_hash_bucket_fast(['a','b','c','d'], 10)
const BucketCase kBuckets[] = {
    {"a", 10, 9},
    {"b", 10, 2},
    {"c", 10, 2},
    {"d", 10, 5},
};

}  // namespace

int main() {
  int pass = 0, fail = 0;

  // 1. Golden vectors, hashed both from the literal and from an odd address.
  for (const Vector& v : kVectors) {
    const uint64_t got = dupn::fingerprint64(v.input, v.len);
    std::vector<char> buf(v.len + 1);
    if (v.len) std::memcpy(buf.data() + 1, v.input, v.len);
    const uint64_t got_unaligned = dupn::fingerprint64(buf.data() + 1, v.len);
    if (got == v.expected && got_unaligned == v.expected) {
      ++pass;
    } else {
      ++fail;
      std::printf("FAIL len=%zu expected %016llx got %016llx (unaligned %016llx)\n", v.len,
                  (unsigned long long)v.expected, (unsigned long long)got,
                  (unsigned long long)got_unaligned);
    }
  }
  const int golden = (int)(sizeof kVectors / sizeof kVectors[0]);
  std::printf("golden vectors: %d/%d PASS\n", pass, golden);

  // 2. Bucket ids match TensorFlow.
  int bpass = 0;
  for (const BucketCase& b : kBuckets) {
    const uint32_t got =
        dupn::bucket_of(dupn::fingerprint64(b.input, std::strlen(b.input)), b.buckets);
    if (got == b.expected) {
      ++bpass;
    } else {
      ++fail;
      std::printf("FAIL bucket of \"%s\" mod %u: expected %u got %u\n", b.input, b.buckets,
                  b.expected, got);
    }
  }
  const int nb = (int)(sizeof kBuckets / sizeof kBuckets[0]);
  std::printf("bucket cases: %d/%d PASS\n", bpass, nb);

  // 3. Every length 0..300 read from offset 1 of a heap buffer sized exactly
  //    len + 1, so any over-read lands in ASan's redzone. The result must not
  //    depend on alignment.
  int spass = 0;
  const size_t kMaxLen = 300;
  for (size_t len = 0; len <= kMaxLen; ++len) {
    char* buf = new char[len + 1];
    buf[0] = 0x5a;
    for (size_t i = 0; i < len; ++i) buf[i + 1] = (char)(unsigned char)(i * 131u + len * 7u + 1u);
    const uint64_t unaligned = dupn::fingerprint64(buf + 1, len);
    std::vector<uint64_t> aligned_copy((len + 7) / 8 + 1);
    if (len) std::memcpy(aligned_copy.data(), buf + 1, len);
    const uint64_t aligned = dupn::fingerprint64(reinterpret_cast<const char*>(aligned_copy.data()), len);
    delete[] buf;
    if (unaligned == aligned) {
      ++spass;
    } else {
      ++fail;
      std::printf("FAIL alignment mismatch at len=%zu\n", len);
    }
  }
  std::printf("unaligned sweep 0..%zu: %d/%zu PASS\n", kMaxLen, spass, kMaxLen + 1);

  // Null pointer with length 0 is allowed.
  if (dupn::fingerprint64(nullptr, 0) != 0x9ae16a3b2f90404fULL) {
    ++fail;
    std::printf("FAIL null/0\n");
  }

  std::printf("%s\n", fail == 0 ? "PASS" : "FAIL");
  return fail == 0 ? 0 : 1;
}
