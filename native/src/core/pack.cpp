#include "pack.h"

#include <cstddef>

namespace dupn {

void transpose_columns(const float* src, int rows, int ld, int col0, int cols, float* dst) {
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) dst[static_cast<size_t>(c) * rows + r] = src[static_cast<size_t>(r) * ld + col0 + c];
}

void pack_lstm_input(const float* wx, const float* wp, int hidden, int dx, int dp, float* wxp_t) {
  const int G = 4 * hidden;
  transpose(wx, G, dx, wxp_t);
  float* p_t = wxp_t + static_cast<size_t>(dx) * G;
  for (int j = 0; j < G; ++j) {
    const int row = property_row(j, hidden);
    for (int c = 0; c < dp; ++c) p_t[static_cast<size_t>(c) * G + j] = row < 0 ? 0.0f : wp[static_cast<size_t>(row) * dp + c];
  }
}

void pack_attention(const float* w, int A, int dh, int dq, int du, int dp, float* hp_t, float* qu_t) {
  const int in = dh + dq + du + dp;
  transpose_columns(w, A, in, 0, dh, hp_t);
  transpose_columns(w, A, in, dh + dq + du, dp, hp_t + static_cast<size_t>(dh) * A);
  transpose_columns(w, A, in, dh, dq + du, qu_t);
}

}  // namespace dupn
