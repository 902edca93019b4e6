#pragma once
// A dense, row-major, 64-byte aligned tensor of float or double.
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <new>
#include <type_traits>
#include <vector>

#include "flowgrad/tensor/shape.hpp"

namespace flowgrad {

template <class T>
concept Scalar = std::is_same_v<T, float> || std::is_same_v<T, double>;

inline constexpr std::size_t tensor_alignment = 64;

template <Scalar T>
class Tensor {
 public:
  using value_type = T;

  Tensor() = default;
  explicit Tensor(Shape shape) {
    resize(shape);
    fill(T(0));
  }
  Tensor(Shape shape, T value) {
    resize(shape);
    fill(value);
  }
  // Row-major values; their count must match the shape.
  Tensor(Shape shape, std::initializer_list<T> values);
  Tensor(Shape shape, const std::vector<T>& values);

  Tensor(const Tensor& other) { *this = other; }
  Tensor& operator=(const Tensor& other);
  Tensor(Tensor&&) noexcept = default;
  Tensor& operator=(Tensor&&) noexcept = default;

  static Tensor scalar(T value) { return Tensor(Shape{1, 1}, value); }
  // A tensor over memory it does not own (64-byte aligned, at least shape.numel() values, outliving
  // it): resize() and copy-assignment write there while the shape fits, as a gradient that must
  // stay in a shared buffer needs (flowgrad/parallel/data_parallel.hpp); a larger resize() gives
  // it memory of its own, and a tensor moved into it replaces it.
  static Tensor view(T* data, Shape shape);
  bool owns_data() const { return data_.get_deleter().owns; }

  const Shape& shape() const { return shape_; }
  Index rows() const { return shape_.rows(); }
  Index cols() const { return shape_.cols(); }
  Index numel() const { return shape_.numel(); }
  bool empty() const { return numel() == 0; }

  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  T& operator[](Index i) { return data_[static_cast<std::size_t>(i)]; }
  T operator[](Index i) const { return data_[static_cast<std::size_t>(i)]; }
  T& operator()(Index r, Index c) { return data_[static_cast<std::size_t>(r * cols() + c)]; }
  T operator()(Index r, Index c) const { return data_[static_cast<std::size_t>(r * cols() + c)]; }
  // The single value of a one-element tensor; throws otherwise.
  T item() const;

  // Changes the shape, keeping the allocation when it is large enough, so that buffers reused
  // across training steps allocate only while warming up. Values are unspecified afterwards.
  void resize(Shape shape);
  // Same number of elements, new shape; values kept.
  void reshape(Shape shape);
  void fill(T value);
  std::size_t capacity() const { return capacity_; }

  template <Scalar U>
  Tensor<U> cast() const {
    Tensor<U> out(shape_);
    for (Index i = 0; i < numel(); ++i) out[i] = static_cast<U>((*this)[i]);
    return out;
  }

 private:
  struct AlignedDelete {
    bool owns = true;
    void operator()(T* p) const {
      if (owns) ::operator delete[](p, std::align_val_t{tensor_alignment});
    }
  };
  Shape shape_{0, 0};
  std::unique_ptr<T[], AlignedDelete> data_;
  std::size_t capacity_ = 0;
};

using TensorF = Tensor<float>;
using TensorD = Tensor<double>;

extern template class Tensor<float>;
extern template class Tensor<double>;

}  // namespace flowgrad
