#pragma once
// Differentiable ops on Vars, named as a PyTorch user would guess. Binary ops broadcast a [1, n]
// row, an [m, 1] column and a [1, 1] scalar; their gradients are summed back to each input's shape.
// Every op throws std::invalid_argument naming itself on a shape mismatch.
#include <span>
#include <type_traits>
#include <vector>

#include "flowgrad/autodiff/tape.hpp"
#include "flowgrad/tensor/activation.hpp"
#include "flowgrad/tensor/gemm_options.hpp"

namespace flowgrad {

// Elementwise arithmetic.
template <Scalar T>
Var<T> add(const Var<T>& a, const Var<T>& b);
template <Scalar T>
Var<T> sub(const Var<T>& a, const Var<T>& b);
template <Scalar T>
Var<T> mul(const Var<T>& a, const Var<T>& b);
template <Scalar T>
Var<T> div(const Var<T>& a, const Var<T>& b);
template <Scalar T>
Var<T> neg(const Var<T>& x);
// x * scale + shift with constant scalars: one node, no constant tensor.
template <Scalar T>
Var<T> affine(const Var<T>& x, std::type_identity_t<T> scale, std::type_identity_t<T> shift);

// Elementwise functions.
template <Scalar T>
Var<T> exp(const Var<T>& x);
template <Scalar T>
Var<T> log(const Var<T>& x);
template <Scalar T>
Var<T> tanh(const Var<T>& x);
template <Scalar T>
Var<T> sigmoid(const Var<T>& x);
template <Scalar T>
Var<T> softplus(const Var<T>& x);
template <Scalar T>
Var<T> relu(const Var<T>& x);
template <Scalar T>
Var<T> leaky_relu(const Var<T>& x, std::type_identity_t<T> negative_slope = T(0.01));
template <Scalar T>
Var<T> square(const Var<T>& x);
template <Scalar T>
Var<T> sqrt(const Var<T>& x);
template <Scalar T>
Var<T> sin(const Var<T>& x);
template <Scalar T>
Var<T> cos(const Var<T>& x);
template <Scalar T>
Var<T> abs(const Var<T>& x);
template <Scalar T>
Var<T> pow(const Var<T>& x, std::type_identity_t<T> exponent);

// Linear algebra. matmul takes op(a) op(b) as GemmOptions says (accumulate is not allowed here);
// linear(x, weight, bias) = x weight^T + bias with weight [out, in] and bias [out], as torch's;
// with an activation it is act(x weight^T + bias) as one node (leaky_relu's slope is 0.01).
template <Scalar T>
Var<T> matmul(const Var<T>& a, const Var<T>& b, GemmOptions opt = {});
template <Scalar T>
Var<T> linear(const Var<T>& x, const Var<T>& weight, const Var<T>& bias,
              Activation act = Activation::none);
// Rows x of X solving A x = b for each row b of B (X = B A^-T), A [m, m] lower (or upper)
// triangular, B [n, m]; only A's triangle is read, and with unit_diagonal its diagonal is taken to
// be 1. Differentiable with respect to A (its triangle) and B. Throws std::invalid_argument on
// shapes that do not fit or a zero on A's diagonal.
template <Scalar T>
Var<T> solve_triangular(const Var<T>& a, const Var<T>& b, bool lower, bool unit_diagonal = false);
// A whole MLP as one node: params = {weight 0, bias 0, weight 1, ...} as linear() takes them, with
// `hidden` after every layer but the last and `output` after the last, for 1 to mlp_max_layers
// layers. Same values as the chain of linear()s; each block of rows goes through every layer,
// forward and backward, while it is in cache, and a pass over the batch is split between threads
// once rather than once per layer.
inline constexpr int mlp_max_layers = 3;
template <Scalar T>
Var<T> mlp(const Var<T>& x, std::span<const Var<T>> params, Activation hidden, Activation output);

// Reductions keep the reduced dimension (torch's keepdim=True): dim 0 over rows, dim 1 over
// columns.
template <Scalar T>
Var<T> sum(const Var<T>& x);
template <Scalar T>
Var<T> sum(const Var<T>& x, int dim);
template <Scalar T>
Var<T> mean(const Var<T>& x);
template <Scalar T>
Var<T> mean(const Var<T>& x, int dim);
template <Scalar T>
Var<T> logsumexp(const Var<T>& x, int dim);
// log(exp(a) + exp(b)), stably, with broadcasting.
template <Scalar T>
Var<T> logaddexp(const Var<T>& a, const Var<T>& b);

// Columns. cat joins along dim 1; narrow takes columns [start, start + length).
template <Scalar T>
Var<T> cat(std::initializer_list<Var<T>> parts);  // up to 8 parts
template <Scalar T>
Var<T> narrow(const Var<T>& x, Index start, Index length);
// Splits the columns into consecutive parts of the given widths, which must add up to x's width
// (torch.split along dim 1).
template <Scalar T>
std::vector<Var<T>> split(const Var<T>& x, const std::vector<Index>& widths);
// Columns idx[0], idx[1], ... of x (torch.index_select along dim 1).
template <Scalar T>
Var<T> select_columns(const Var<T>& x, const std::vector<Index>& idx);
// Keeps the columns where mask is 1 and zeroes the others; mask is a constant [1, n] of 0s and 1s.
template <Scalar T>
Var<T> mask_columns(const Var<T>& x, const Tensor<T>& mask);
// An affine coupling's transform: x with each column idx[j] replaced by x * exp(s) + t, or by
// (x - t) * exp(-s) when inverse, using column j of s and t ([rows, idx.size()]); the other
// columns pass unchanged. Columns may not repeat.
template <Scalar T>
Var<T> affine_columns(const Var<T>& x, const Var<T>& s, const Var<T>& t,
                      const std::vector<Index>& idx, bool inverse = false);

// The rational-quadratic spline of Durkan et al. 2019 ("Neural Spline Flows"), elementwise on
// x [n, m], with `bins` = K bins on [-tail_bound, tail_bound] and the identity outside
// (log-derivative 0 there, no gradient to the parameters). params is [n, m (3K - 1)]: for column j
// of x, columns [j (3K - 1), (j + 1)(3K - 1)) of params hold K width logits, K height logits and K
// - 1 interior knot-derivative logits, in that order. Widths are 1e-3 + (1 - 1e-3 K) softmax(width
// logits) of 2 tail_bound (heights likewise), interior derivatives 1e-3 + softplus(logit), the two
// boundary derivatives 1, so the map and its derivative are continuous at +-tail_bound. Returns out
// = y and log_det = log|dy/dx| per element, both [n, m]; with inverse, x = the spline's inverse at
// the given values and log|dx/dy|. Differentiable in both directions with respect to x and params.
// 1 <= bins <= 128. The width and height logits are multiplied by logit_scale (> 0) before their
// softmaxes (the flows pass 1/sqrt(hidden width), a known initialisation help) inside the node,
// which saves a pass over params. Formulas: docs/design.md §4.
template <Scalar T>
struct SplineResult {
  Var<T> out;
  Var<T> log_det;
};
template <Scalar T>
SplineResult<T> rational_quadratic_spline(const Var<T>& x, const Var<T>& params, Index bins,
                                          std::type_identity_t<T> tail_bound, bool inverse = false,
                                          double logit_scale = 1);

// The masked affine autoregressive transform (MAF) on x [n, d] with params [n, 2d]: column 2i of
// params is the shift t_i, column 2i + 1 the raw log-scale a_i of column i, s_i = bound
// tanh(a_i / bound) (so |s_i| < bound), y = x exp(s) + t and log_det = sum_i s_i ([n, 1]); with
// inverse, x = (y - t) exp(-s) at the given values and log_det = -sum_i s_i. One node;
// differentiable with respect to x and params.
template <Scalar T>
struct AffineResult {
  Var<T> out;
  Var<T> log_det;
};
template <Scalar T>
AffineResult<T> bounded_affine(const Var<T>& x, const Var<T>& params, std::type_identity_t<T> bound,
                               bool inverse = false);

template <Scalar T>
Var<T> operator+(const Var<T>& a, const Var<T>& b) {
  return add(a, b);
}
template <Scalar T>
Var<T> operator-(const Var<T>& a, const Var<T>& b) {
  return sub(a, b);
}
template <Scalar T>
Var<T> operator*(const Var<T>& a, const Var<T>& b) {
  return mul(a, b);
}
template <Scalar T>
Var<T> operator/(const Var<T>& a, const Var<T>& b) {
  return div(a, b);
}
template <Scalar T>
Var<T> operator-(const Var<T>& x) {
  return neg(x);
}
// Scalar operands take the Var's type, so `x * 2.0` works on a float tape too.
template <Scalar T>
using ScalarOf = std::type_identity_t<T>;
template <Scalar T>
Var<T> operator+(const Var<T>& x, ScalarOf<T> c) {
  return affine(x, T(1), c);
}
template <Scalar T>
Var<T> operator+(ScalarOf<T> c, const Var<T>& x) {
  return affine(x, T(1), c);
}
template <Scalar T>
Var<T> operator-(const Var<T>& x, ScalarOf<T> c) {
  return affine(x, T(1), -c);
}
template <Scalar T>
Var<T> operator-(ScalarOf<T> c, const Var<T>& x) {
  return affine(x, T(-1), c);
}
template <Scalar T>
Var<T> operator*(const Var<T>& x, ScalarOf<T> c) {
  return affine(x, c, T(0));
}
template <Scalar T>
Var<T> operator*(ScalarOf<T> c, const Var<T>& x) {
  return affine(x, c, T(0));
}
template <Scalar T>
Var<T> operator/(const Var<T>& x, ScalarOf<T> c) {
  return affine(x, T(1) / c, T(0));
}

}  // namespace flowgrad
