#pragma once
// A trainable tensor owned by a module, outside any tape: its value and its accumulated gradient.
#include "flowgrad/tensor/tensor.hpp"

namespace flowgrad {

template <Scalar T>
struct Parameter {
  Parameter() = default;
  explicit Parameter(Tensor<T> v) : value(std::move(v)), grad(value.shape()) {}
  Tensor<T> value;
  Tensor<T> grad;
  void zero_grad() {
    grad.resize(value.shape());
    grad.fill(T(0));
  }
};

}  // namespace flowgrad
