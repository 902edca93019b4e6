#include "flowgrad/tensor/shape.hpp"

#include <stdexcept>

namespace flowgrad {

Shape::Shape(std::initializer_list<Index> dims) {
  if (dims.size() > max_rank) throw std::invalid_argument("Shape: rank above 4 is not supported");
  for (Index d : dims) {
    if (d < 0) throw std::invalid_argument("Shape: negative dimension");
    dims_[static_cast<std::size_t>(rank_++)] = d;
  }
}

bool Shape::operator==(const Shape& other) const {
  if (rank_ != other.rank_) return false;
  for (int i = 0; i < rank_; ++i)
    if (dims_[static_cast<std::size_t>(i)] != other.dims_[static_cast<std::size_t>(i)])
      return false;
  return true;
}

std::string Shape::str() const {
  std::string s = "[";
  for (int i = 0; i < rank_; ++i) {
    if (i) s += ", ";
    s += std::to_string(dims_[static_cast<std::size_t>(i)]);
  }
  return s + "]";
}

}  // namespace flowgrad
