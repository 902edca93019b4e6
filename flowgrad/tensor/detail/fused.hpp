#pragma once
// Not installed: fused kernels for a layer's bias and activation: one pass over the layer's output instead of
// three (bias add, activation, and in backward the derivative with the bias gradient).
#include "flowgrad/tensor/activation.hpp"
#include "flowgrad/tensor/tensor.hpp"

namespace flowgrad {

// y = act(y + bias) in place; bias has y.cols() elements. `slope` is leaky_relu's negative slope.
template <Scalar T>
void bias_activation(Tensor<T>& y, const Tensor<T>& bias, Activation act, T slope = T(0.01));

// y = act(x W^T + bias) for x [m, k], W [n, k] and n bias values: the matrix multiply applies the
// bias and activation to each block of y while the block is still in cache (a layer's forward
// pass in one sweep over y instead of two).
template <Scalar T>
void linear_forward(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& bias, Activation act,
                    T slope, Tensor<T>& y);

// gz = gy * act'(x), with the derivative computed from the output y = act(x) (every activation
// here is monotone, so y determines it); and, when bias_grad is given, bias_grad += column sums of
// gz.
template <Scalar T>
void activation_backward(const Tensor<T>& y, const Tensor<T>& gy, Activation act, T slope,
                         Tensor<T>& gz, Tensor<T>* bias_grad);

}  // namespace flowgrad
