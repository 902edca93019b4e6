#pragma once
// Not installed. The rational-quadratic spline's elementwise work, forward and backward, for the
// node of autodiff/ops_spline.cpp: a kernel of tensor/spline.cpp, compiled per ISA and reached
// through the kernel table, because it is an NSF step's largest cost after the products and runs
// twice as many double lanes with AVX-512.
#include "flowgrad/tensor/tensor.hpp"

namespace flowgrad::detail {

inline constexpr Index spline_max_bins = 128;  // the knots of a group live on the stack

struct SplineSettings {
  Index bins;
  double bound;        // B: the spline maps [-B, B] to itself, the identity outside
  bool inverse;        // x is y and the result x = F^-1(y)
  double logit_scale;  // multiplies the width and height logits (the first 2 bins per element)
};

// x [rows, m] and params [rows, m (3 bins - 1)] (each element's widths, heights, derivatives) to
// out [rows, 2m]: the transformed values, then the log-derivatives.
template <class T>
void spline_forward(const Tensor<T>& x, const Tensor<T>& params, const SplineSettings& s,
                    Tensor<T>& out);

// With grad [rows, 2m] the gradient of out: adds the gradients of x and params into gx and gp
// (either may be null).
template <class T>
void spline_backward(const Tensor<T>& x, const Tensor<T>& params, const Tensor<T>& grad,
                     const SplineSettings& s, Tensor<T>* gx, Tensor<T>* gp);

}  // namespace flowgrad::detail
