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
  // zero_grad() without the pass over memory (PyTorch's set_to_none): the gradient is empty until
  // a backward() writes it, and a backward() over a tape that recorded this parameter writes all of
  // it, zeros where no gradient reached. The memory is kept for that write.
  void clear_grad() { grad.resize(Shape{0}); }
  // False after clear_grad() until a backward() has written the gradient.
  bool has_grad() const { return grad.shape() == value.shape(); }
};

}  // namespace flowgrad
