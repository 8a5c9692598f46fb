// Dense weights in the layouts the kernels read, written into caller-owned buffers: Model::build packs
// once into fresh ones, the trainer repacks into the same ones after every optimizer step. Each layout
// is defined here alone, so serving and training cannot drift apart.
#pragma once

namespace dupn {

// dst (cols × rows) = columns [col0, col0 + cols) of src (rows × ld, row-major), transposed.
void transpose_columns(const float* src, int rows, int ld, int col0, int cols, float* dst);

// dst (cols × rows) = srcᵀ for src rows × cols.
inline void transpose(const float* src, int rows, int cols, float* dst) { transpose_columns(src, rows, cols, 0, cols, dst); }

// The row of wp (3H × dp) that feeds fused gate column j (0 ≤ j < 4H), or -1. The gates are i, f, g, o
// but wp holds only i, f, o: the candidate g has no property term.
inline int property_row(int j, int hidden) {
  const int gate = j / hidden;
  return gate == 2 ? -1 : gate == 3 ? j - hidden : j;
}

// wxp_t ((dx + dp) × 4H): wx (4H × dx) and wp (3H × dp) fused over the input [x ; p] and transposed, zero
// where property_row is -1. wp may be null when dp is 0.
void pack_lstm_input(const float* wx, const float* wp, int hidden, int dx, int dp, float* wxp_t);

// attn.w (A × (dh + dq + du + dp), columns [H_t ; q ; u ; p_t]) split by how often its input changes and
// transposed: hp_t ((dh + dp) × A) sees H_t then p_t (every step), qu_t ((dq + du) × A) sees q then u
// (once per user).
void pack_attention(const float* w, int A, int dh, int dq, int du, int dp, float* hp_t, float* qu_t);

}  // namespace dupn
