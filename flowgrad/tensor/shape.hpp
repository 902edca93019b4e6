#pragma once
// The shape of a dense row-major tensor. The ops in scope are 2-D (batch x features), but the type
// holds up to four dimensions so that rank can grow without changing every signature.
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

namespace flowgrad {

using Index = std::int64_t;

class Shape {
 public:
  static constexpr int max_rank = 4;

  Shape() = default;  // rank 0: a scalar with one element
  Shape(std::initializer_list<Index> dims);

  int rank() const { return rank_; }
  Index operator[](int axis) const { return dims_[static_cast<std::size_t>(axis)]; }
  // Inline: element access and every kernel's loop bounds go through these.
  Index numel() const {
    Index n = 1;
    for (int i = 0; i < rank_; ++i) n *= dims_[static_cast<std::size_t>(i)];
    return n;
  }

  // 2-D views of the shape: a rank-1 [n] reads as one row [1, n], a scalar as [1, 1].
  Index rows() const {
    Index r = 1;
    for (int i = 0; i + 1 < rank_; ++i) r *= dims_[static_cast<std::size_t>(i)];
    return r;
  }
  Index cols() const { return rank_ == 0 ? 1 : dims_[static_cast<std::size_t>(rank_ - 1)]; }

  bool operator==(const Shape& other) const;
  std::string str() const;  // "[3, 4]"

 private:
  std::array<Index, max_rank> dims_{};
  int rank_ = 0;
};

}  // namespace flowgrad
