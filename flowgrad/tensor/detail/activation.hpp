#pragma once
// Not installed: the activations on SIMD batches, shared by the fused bias + activation kernels
// (tensor/fused.cpp) and gemm's micro-kernels, which apply them in registers: both must compute
// the same bits.
#include <type_traits>

#include "flowgrad/tensor/detail/simd.hpp"
#include "flowgrad/tensor/detail/fused.hpp"

namespace flowgrad::detail {

template <Activation A, class T>
simd::batch<T> activate(simd::batch<T> x, simd::batch<T> slope) {
  const simd::batch<T> zero(T(0)), one(T(1));
  switch (A) {
    case Activation::none:
      return x;
    case Activation::relu:
      return xsimd::max(x, zero);
    case Activation::leaky_relu:
      return xsimd::select(x > zero, x, x * slope);
    case Activation::tanh:
      return xsimd::tanh(x);
    case Activation::sigmoid:
      return one / (one + xsimd::exp(-x));
    case Activation::softplus:
      return xsimd::max(x, zero) + xsimd::log1p(xsimd::exp(-xsimd::abs(x)));
  }
  return x;
}

// act'(x) from y = act(x).
template <Activation A, class T>
simd::batch<T> derivative_from_output(simd::batch<T> y, simd::batch<T> slope) {
  const simd::batch<T> zero(T(0)), one(T(1));
  switch (A) {
    case Activation::none:
      return one;
    case Activation::relu:
      return xsimd::select(y > zero, one, zero);
    case Activation::leaky_relu:
      return xsimd::select(y > zero, one, slope);
    case Activation::tanh:
      return one - y * y;
    case Activation::sigmoid:
      return y * (one - y);
    // softplus' = sigmoid(x) = 1 - exp(-softplus(x)); expm1 keeps it exact for tiny y.
    case Activation::softplus:
      return -xsimd::expm1(-y);
  }
  return one;
}

// body(tag) with decltype(tag)::value the activation as a constant: the kernels' inner loops then
// hold no switch (a switch per batch kept them from inlining the activation at all).
template <class Body>
void with_activation(Activation act, Body body) {
  using enum Activation;
  switch (act) {
    case none:
      return body(std::integral_constant<Activation, none>{});
    case relu:
      return body(std::integral_constant<Activation, relu>{});
    case leaky_relu:
      return body(std::integral_constant<Activation, leaky_relu>{});
    case tanh:
      return body(std::integral_constant<Activation, tanh>{});
    case sigmoid:
      return body(std::integral_constant<Activation, sigmoid>{});
    case softplus:
      return body(std::integral_constant<Activation, softplus>{});
  }
}

}  // namespace flowgrad::detail
