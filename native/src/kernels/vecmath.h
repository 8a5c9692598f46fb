// Vectorised exp / sigmoid / tanh (Cephes-style range reduction and minimax polynomials, ~2 ulp),
// written once over a small SIMD traits type so the AVX2 and AVX-512 files share one implementation. The
// polynomials and updates use explicit fused multiply-adds (V::fma, V::fnma): one rounding instead of two, and
// a third fewer operations in the LSTM cell, which is most of what the recurrence does besides its product.
// Included only by ISA translation units; each instantiates it with its own register type.
#pragma once
#include <cstring>

namespace dupn {
namespace vecmath {

template <class V>
struct Math {
  using T = typename V::T;

  static T exp(T x) {
    // ±88 keeps 2^n a normal float on every path; e^±88 already saturates sigmoid and tanh.
    const T hi = V::set1(88.0f), lo = V::set1(-88.0f);
    x = V::min(V::max(x, lo), hi);
    const T n = V::round(V::mul(x, V::set1(1.44269504088896341f)));
    // x - n·ln2 in two steps (Cody–Waite) keeps the reduced argument exact enough.
    x = V::fnma(n, V::set1(0.693359375f), x);
    x = V::fnma(n, V::set1(-2.12194440e-4f), x);
    T y = V::set1(1.9875691500e-4f);
    y = V::fma(y, x, V::set1(1.3981999507e-3f));
    y = V::fma(y, x, V::set1(8.3334519073e-3f));
    y = V::fma(y, x, V::set1(4.1665795894e-2f));
    y = V::fma(y, x, V::set1(1.6666665459e-1f));
    y = V::fma(y, x, V::set1(5.0000001201e-1f));
    y = V::add(V::fma(V::mul(y, x), x, x), V::set1(1.0f));
    return V::scale2(y, n);
  }

  // 1/d from the hardware estimate and one Newton step (≈ 23 bits or better; no slow divide).
  static T recip(T d) {
    const T r = V::rcp(d);
    return V::mul(r, V::fnma(d, r, V::set1(2.0f)));
  }

  static T sigmoid(T x) {
    const T one = V::set1(1.0f);
    return recip(V::add(one, exp(V::sub(V::set1(0.0f), x))));
  }

  // Small |x|: odd polynomial (no cancellation); larger: 1 − 2/(e^{2|x|} + 1) with the sign put back.
  static T tanh(T x) {
    const T ax = V::abs(x);
    const T z = V::mul(x, x);
    T p = V::set1(-5.70498872745e-3f);
    p = V::fma(p, z, V::set1(2.06390887954e-2f));
    p = V::fma(p, z, V::set1(-5.37397155531e-2f));
    p = V::fma(p, z, V::set1(1.33314422036e-1f));
    p = V::fma(p, z, V::set1(-3.33332819422e-1f));
    const T small = V::fma(V::mul(p, z), x, x);
    const T inv = recip(V::add(exp(V::add(ax, ax)), V::set1(1.0f)));
    const T big = V::copysign(V::fnma(V::set1(2.0f), inv, V::set1(1.0f)), x);
    return V::select(V::less(ax, V::set1(0.625f)), small, big);
  }
};

// The bf16 path's activations (precision "bf16", promised within 1e-2 of fp32). Its products already round h
// and W_h to 8 significant bits (relative 2^-9), so about 1e-4 is enough here, not Math's 2 ulp; this takes
// about half of Math's vector operations: one-constant range reduction and a degree-4 polynomial for exp
// (relative error below 5e-5), the hardware reciprocal estimate without a Newton step (2^-14), and
// tanh(x) = 2·σ(2x) − 1 (absolute error near 1e-4).
template <class V>
struct FastMath {
  using T = typename V::T;

  static T exp(T x) {
    x = V::min(V::max(x, V::set1(-87.0f)), V::set1(87.0f));
    const T n = V::round(V::mul(x, V::set1(1.44269504088896341f)));
    const T r = V::fma(n, V::set1(-0.693147180559945309f), x);
    T p = V::fma(V::set1(1.0f / 24), r, V::set1(1.0f / 6));
    p = V::fma(p, r, V::set1(0.5f));
    p = V::fma(p, r, V::set1(1.0f));
    p = V::fma(p, r, V::set1(1.0f));
    return V::scale2(p, n);
  }

  static T sigmoid(T x) { return V::rcp(V::add(V::set1(1.0f), exp(V::sub(V::set1(0.0f), x)))); }

  static T tanh(T x) { return V::fma(V::set1(2.0f), sigmoid(V::add(x, x)), V::set1(-1.0f)); }
};

// One LSTM step for H units: pre-activations are z (recurrent part) + gx (input part and bias), gate
// blocks i, f, g, o of H each; c and h are updated in place.
template <class V>
void lstm_cell(int H, const float* z, const float* gx, float* c, float* h) {
  using M = Math<V>;
  constexpr int W = V::kWidth;
  auto step = [&](int q, int n) {
    auto pre = [&](int block) { return V::add(V::load(z + block * H + q, n), V::load(gx + block * H + q, n)); };
    const auto i = M::sigmoid(pre(0)), f = M::sigmoid(pre(1)), g = M::tanh(pre(2)), o = M::sigmoid(pre(3));
    const auto cn = V::fma(f, V::load(c + q, n), V::mul(i, g));
    V::store(c + q, cn, n);
    V::store(h + q, V::mul(o, M::tanh(cn)), n);
  };
  int q = 0;
  for (; q + W <= H; q += W) step(q, W);
  if (q < H) step(q, H - q);
}

// The cell update of one row and one block of kWidth units from its four gate pre-activations held in
// registers (the fused steps' recurrent products); x holds the block's gx terms i | f | g | o, kWidth apart.
// The same vector math, in the same order, as lstm_cell (with the default M). Returns the new h.
template <class V, class M = Math<V>>
inline typename V::T cell_block(typename V::T zi, typename V::T zf, typename V::T zg, typename V::T zo, const float* x, float* c,
                                float* h) {
  constexpr int W = V::kWidth;
  const auto i = M::sigmoid(V::add(zi, V::load(x, W)));
  const auto f = M::sigmoid(V::add(zf, V::load(x + W, W)));
  const auto g = M::tanh(V::add(zg, V::load(x + 2 * W, W)));
  const auto o = M::sigmoid(V::add(zo, V::load(x + 3 * W, W)));
  const auto cn = V::fma(f, V::load(c, W), V::mul(i, g));
  V::store(c, cn, W);
  const auto hn = V::mul(o, M::tanh(cn));
  V::store(h, hn, W);
  return hn;
}

// The training forward of one LSTM step (H units, one row): from the pre-activations pre (gate blocks
// i, f, g, o) it keeps what the backward pass needs: the activated gates (in place of pre), the new cell
// c, tanh(c) in tc and h. c_prev may alias c.
template <class V>
void lstm_cell_train(int H, float* pre, const float* c_prev, float* c, float* tc, float* h) {
  using M = Math<V>;
  constexpr int W = V::kWidth;
  auto step = [&](int q, int n) {
    const auto i = M::sigmoid(V::load(pre + q, n)), f = M::sigmoid(V::load(pre + H + q, n));
    const auto g = M::tanh(V::load(pre + 2 * H + q, n)), o = M::sigmoid(V::load(pre + 3 * H + q, n));
    const auto cn = V::fma(f, V::load(c_prev + q, n), V::mul(i, g));
    const auto t = M::tanh(cn);
    V::store(pre + q, i, n);
    V::store(pre + H + q, f, n);
    V::store(pre + 2 * H + q, g, n);
    V::store(pre + 3 * H + q, o, n);
    V::store(c + q, cn, n);
    V::store(tc + q, t, n);
    V::store(h + q, V::mul(o, t), n);
  };
  int q = 0;
  for (; q + W <= H; q += W) step(q, W);
  if (q < H) step(q, H - q);
}

// y = tanh(x) over n values (x and y may alias).
template <class V>
void tanh_map(int n, const float* x, float* y) {
  constexpr int W = V::kWidth;
  int i = 0;
  for (; i + W <= n; i += W) V::store(y + i, Math<V>::tanh(V::load(x + i, W)), W);
  if (i < n) V::store(y + i, Math<V>::tanh(V::load(x + i, n - i)), n - i);
}

// Σ_a v_a · tanh(s_a + b_a): the attention score of one step.
template <class V>
float tanh_dot(int A, const float* s, const float* b, const float* v) {
  using M = Math<V>;
  constexpr int W = V::kWidth;
  auto acc = V::set1(0.0f);
  int a = 0;
  for (; a + W <= A; a += W) acc = V::add(acc, V::mul(V::load(v + a, W), M::tanh(V::add(V::load(s + a, W), V::load(b + a, W)))));
  // Masked-out lanes load as 0 for v, so they add nothing.
  if (a < A) acc = V::add(acc, V::mul(V::load(v + a, A - a), M::tanh(V::add(V::load(s + a, A - a), V::load(b + a, A - a)))));
  return V::sum(acc);
}

template <class V>
void relu_dot(int M, int K, const float* x, int ldx, const float* w, float bias, float* out) {
  constexpr int W = V::kWidth;
  const auto zero = V::set1(0.0f);
  for (int m = 0; m < M; ++m) {
    const float* row = x + static_cast<long>(m) * ldx;
    // Two accumulators halve the add-latency chain at K = 64; masked-out lanes load as 0 and add nothing.
    auto a0 = zero, a1 = zero;
    int k = 0;
    for (; k + 2 * W <= K; k += 2 * W) {
      a0 = V::add(a0, V::mul(V::max(V::load(row + k, W), zero), V::load(w + k, W)));
      a1 = V::add(a1, V::mul(V::max(V::load(row + k + W, W), zero), V::load(w + k + W, W)));
    }
    for (; k < K; k += W) {
      const int n = K - k < W ? K - k : W;
      a0 = V::add(a0, V::mul(V::max(V::load(row + k, n), zero), V::load(w + k, n)));
    }
    out[m] = bias + V::sum(V::add(a0, a1));
  }
}

}  // namespace vecmath
}  // namespace dupn
