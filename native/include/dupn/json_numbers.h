// JSON text of float32 arrays, each value as the shortest decimal that reads back to the same float32.
//
// A served answer is mostly scores (two tasks × 500 candidates). Printed from JavaScript, each float32 widens to
// a double and V8 prints that double's shortest form (about 17 digits, ~170 ns a number): most of the event
// loop's serialising time. The float32's own shortest form has at most 9 significant digits, loses nothing
// (Math.fround of the parsed number is the model's value), and takes a fraction of the time.
#pragma once

#include <cstddef>
#include <string>

namespace dupn {

// Appends f's shortest round-trip decimal in JavaScript's number syntax (`0.5`, `1e-7`, `1.5e+21`; -0 as `0`);
// `null` for NaN and ±Infinity, as JSON.stringify writes them.
void append_float32(std::string& out, float f);

// The same through the slow path only (snprintf and strtof at 1..9 digits): the reference the checks compare with.
void append_float32_slow(std::string& out, float f);

// Appends `[v0,v1,…]` to out, or, when row > 0, `[[…],[…],…]` (n / row rows of `row` values; row must divide
// n), each value as append_float32 writes it.
void append_float32_json(std::string& out, const float* values, size_t n, size_t row);

}  // namespace dupn
