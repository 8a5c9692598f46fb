// Head MLPs in training: the forward keeps every layer's activations, the backward turns d(logits)
// into weight gradients with the GEMM kernel (dW = dYᵀ·X, dX = dY·W) and masks by the ReLUs.
#include <cmath>

#include "../pack.h"
#include "head_backward.h"

namespace dupn {

void head_forward(const Trainer::Impl& t, const KernelTable& k, const std::vector<HeadLayer>& layers, const float* x0, int rows,
                  HeadScratch& s) {
  if (s.acts.size() < layers.size()) s.acts.resize(layers.size());
  const float* in = x0;
  for (size_t l = 0; l < layers.size(); ++l) {
    const HeadLayer& L = layers[l];
    float* out = grow(s.acts[l], static_cast<size_t>(rows) * L.out);
    const float* b = t.params[L.b].data;
    if (rows > 0) k.sgemm(rows, L.out, L.in, in, L.in, L.wt.data(), out, L.out, false, b);
    if (l + 1 < layers.size())
      for (size_t i = 0; i < static_cast<size_t>(rows) * L.out; ++i) out[i] = out[i] > 0.0f ? out[i] : 0.0f;
    in = out;
  }
}

void head_backward(const Trainer::Impl& t, const KernelTable& k, const std::vector<HeadLayer>& layers, const float* x0, int rows,
                   float* dout, bool want_dx0, HeadScratch& s, Grads& g) {
  float* dcur = dout;
  for (int l = static_cast<int>(layers.size()) - 1; l >= 0; --l) {
    const HeadLayer& L = layers[l];
    const float* in = l == 0 ? x0 : s.acts[l - 1].data();
    // dW (out × in) += dYᵀ · X: the kernel wants A row-major, so dY is transposed once.
    float* dt = grow(s.dt, static_cast<size_t>(L.out) * rows);
    transpose(dcur, rows, L.out, dt);
    k.sgemm(L.out, L.in, rows, dt, rows, in, g.dense[L.w].data(), L.in, true, nullptr);
    float* db = g.dense[L.b].data();
    for (int r = 0; r < rows; ++r)
      for (int o = 0; o < L.out; ++o) db[o] += dcur[static_cast<size_t>(r) * L.out + o];
    if (l == 0 && !want_dx0) break;
    AlignedFloats& next = l == 0 ? s.dx0 : (dcur == s.dnext.data() ? s.dcur : s.dnext);
    float* dx = grow(next, static_cast<size_t>(rows) * L.in);
    k.sgemm(rows, L.in, L.out, dcur, L.out, t.params[L.w].data, dx, L.in, false, nullptr);
    if (l > 0)
      for (size_t i = 0; i < static_cast<size_t>(rows) * L.in; ++i)
        if (!(in[i] > 0.0f)) dx[i] = 0.0f;
    dcur = dx;
  }
}

}  // namespace dupn
