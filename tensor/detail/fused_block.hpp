#pragma once
// Not installed: the single-threaded kernel behind bias_activation(), also applied by gemm() to
// blocks of C while they are still in cache (tensor/gemm.cpp).
#include "tensor/fused.hpp"

namespace flowgrad::detail {

// y = act(y + bias) on rows x cols values, rows ldy apart; bias has cols values.
template <class T>
void bias_activation_block(T* y, Index ldy, Index rows, Index cols, const T* bias, Activation act,
                           T slope);

}  // namespace flowgrad::detail
