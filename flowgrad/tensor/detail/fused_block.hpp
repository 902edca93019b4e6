#pragma once
// Not installed: the single-threaded kernels behind bias_activation() and activation_backward(),
// also applied by gemm() to blocks of C while they are still in cache (tensor/gemm_blocked.cpp,
// gemm_thin.cpp) and by the fused MLP node to its blocks of rows (autodiff/ops_mlp.cpp).
#include "flowgrad/tensor/detail/fused.hpp"

namespace flowgrad::detail {

// y = act(y + bias) on rows x cols values, rows ldy apart; bias has cols values.
template <class T>
void bias_activation_block(T* y, Index ldy, Index rows, Index cols, const T* bias, Activation act,
                           T slope);

// gz = gy * act'(.) on rows x cols values stored row after row, the derivative taken from the
// output y = act(.); gz may be gy. With col_sums (cols values), also col_sums = the column sums of
// gz, added row by row in row order.
template <class T>
void activation_backward_block(const T* y, const T* gy, T* gz, Index rows, Index cols,
                               Activation act, T slope, T* col_sums);

// y = act(ct^T + bias): ct holds the block transposed, cols rows of `rows` values, ldct apart (a
// product computed as W x^T); y gets rows x cols values, rows ldy apart. No bias: y = ct^T.
template <class T>
void transpose_bias_activation_block(const T* ct, Index ldct, Index rows, Index cols, const T* bias,
                                     Activation act, T slope, T* y, Index ldy);

}  // namespace flowgrad::detail
