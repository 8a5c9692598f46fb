// Shortest round-trip formatting is std::to_chars (Ryu-based in libstdc++), which writes no locale and no
// allocation; JSON accepts everything it produces for finite values (`1e-05`, `1.5e+20`, `-0`).
#include "dupn/json_numbers.h"

#include <charconv>
#include <cmath>

namespace dupn {
namespace {

void append_row(std::string& out, const float* v, size_t n) {
  out.push_back('[');
  char buf[32];
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out.push_back(',');
    if (!std::isfinite(v[i])) {
      out.append("null", 4);
      continue;
    }
    const std::to_chars_result r = std::to_chars(buf, buf + sizeof buf, v[i]);
    out.append(buf, static_cast<size_t>(r.ptr - buf));
  }
  out.push_back(']');
}

}  // namespace

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
