// Forward and backward of one head's MLP over a block of input rows, and the per-kind losses.
#pragma once
#include <cmath>

#include "trainer_impl.h"

namespace dupn {

// Scratch of one head pass (per thread, grows only).
struct HeadScratch {
  std::vector<AlignedFloats> acts;  // acts[k]: output of layer k (after ReLU except the last), rows × out_k
  AlignedFloats dcur, dnext, dt, dx0;
};

// acts[k] for rows of x0 (rows × in0).
void head_forward(const Trainer::Impl& t, const KernelTable& k, const std::vector<HeadLayer>& layers, const float* x0, int rows,
                  HeadScratch& s);

// Adds the weight gradients of `head` for d(loss)/d(logits) = dout (rows × outputs, overwritten) and,
// when want_dx0, leaves d(loss)/d(x0) in s.dx0 (rows × in0).
void head_backward(const Trainer::Impl& t, const KernelTable& k, const std::vector<HeadLayer>& layers, const float* x0, int rows,
                   float* dout, bool want_dx0, HeadScratch& s, Grads& g);

// log(1 + e^x) without overflow.
inline double softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
inline double sigmoid_d(double x) { return x >= 0 ? 1.0 / (1.0 + std::exp(-x)) : std::exp(x) / (1.0 + std::exp(x)); }

}  // namespace dupn
