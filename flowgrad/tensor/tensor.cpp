#include "flowgrad/tensor/tensor.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "flowgrad/tensor/budget.hpp"

namespace flowgrad {

namespace {
thread_local TensorBudget* current_budget = nullptr;
}

TensorBudget::TensorBudget(std::size_t bytes) : limit_(bytes), parent_(current_budget) {
  current_budget = this;
}

TensorBudget::~TensorBudget() {
  current_budget = parent_;
  // What was spent inside was spent from the enclosing budget too; it may end over its cap, and
  // then its next allocation fails.
  if (parent_) parent_->used_ += used_;
}

void TensorBudget::charge(std::size_t elements, std::size_t element_size) {
  TensorBudget* b = current_budget;
  if (!b) return;
  const std::size_t left = b->limit_ - std::min(b->used_, b->limit_);
  if (elements > left / element_size)
    throw std::length_error("tensor memory over its budget: " +
                            (elements > std::numeric_limits<std::size_t>::max() / element_size
                                 ? std::string("more than 2^64")
                                 : std::to_string(elements * element_size)) +
                            " bytes more asked for, " + std::to_string(b->used_) + " of " +
                            std::to_string(b->limit_) + " already used");
  b->used_ += elements * element_size;
}

template <Scalar T>
Tensor<T>::Tensor(Shape shape, std::initializer_list<T> values) {
  resize(shape);
  if (static_cast<Index>(values.size()) != numel())
    throw std::invalid_argument("Tensor: " + std::to_string(values.size()) +
                                " values given for shape " + shape.str());
  std::copy(values.begin(), values.end(), data());
}

template <Scalar T>
Tensor<T>::Tensor(Shape shape, const std::vector<T>& values) {
  resize(shape);
  if (static_cast<Index>(values.size()) != numel())
    throw std::invalid_argument("Tensor: " + std::to_string(values.size()) +
                                " values given for shape " + shape.str());
  std::copy(values.begin(), values.end(), data());
}

template <Scalar T>
Tensor<T>& Tensor<T>::operator=(const Tensor& other) {
  if (this == &other) return *this;
  resize(other.shape_);
  std::copy(other.data(), other.data() + other.numel(), data());
  return *this;
}

template <Scalar T>
Tensor<T> Tensor<T>::view(T* data, Shape shape) {
  if (reinterpret_cast<std::uintptr_t>(data) % tensor_alignment != 0)
    throw std::invalid_argument("Tensor::view: memory not aligned to " +
                                std::to_string(tensor_alignment) + " bytes");
  Tensor t;
  t.data_ = std::unique_ptr<T[], AlignedDelete>(data, AlignedDelete{false});
  t.capacity_ = static_cast<std::size_t>(shape.numel());
  t.shape_ = shape;
  return t;
}

template <Scalar T>
T Tensor<T>::item() const {
  if (numel() != 1)
    throw std::invalid_argument("Tensor::item: tensor of shape " + shape_.str() +
                                " has more than one element");
  return data_[0];
}

template <Scalar T>
void Tensor<T>::resize(Shape shape) {
  const auto n = static_cast<std::size_t>(shape.numel());
  if (n > capacity_) {
    // Round up to whole cache lines so that SIMD loads of a row tail stay inside the allocation.
    const std::size_t per_line = tensor_alignment / sizeof(T);
    const std::size_t cap = (n + per_line - 1) / per_line * per_line;
    TensorBudget::charge(n, sizeof(T));
    data_ = std::unique_ptr<T[], AlignedDelete>(
        static_cast<T*>(::operator new[](cap * sizeof(T), std::align_val_t{tensor_alignment})),
        AlignedDelete{true});
    capacity_ = cap;
  }
  shape_ = shape;
}

template <Scalar T>
void Tensor<T>::reshape(Shape shape) {
  if (shape.numel() != numel())
    throw std::invalid_argument("Tensor::reshape: cannot view " + shape_.str() + " as " +
                                shape.str());
  shape_ = shape;
}

template <Scalar T>
void Tensor<T>::fill(T value) {
  std::fill(data(), data() + numel(), value);
}

template class Tensor<float>;
template class Tensor<double>;

}  // namespace flowgrad
