#pragma once
// A data set's rows split into a training part and a held-out part.
#include <cstdint>

#include "flowgrad/tensor/tensor.hpp"

namespace flowgrad {

template <Scalar T>
struct RowSplit {
  Tensor<T> train, test;
};
using Split = RowSplit<float>;

// Splits rows into train and test after a seeded shuffle; test gets round(test_fraction * rows),
// at least 1. Throws std::invalid_argument when test_fraction is not in (0, 1) or either part
// would be empty.
template <Scalar T>
RowSplit<T> split_rows(const Tensor<T>& data, double test_fraction, std::uint64_t seed);

extern template RowSplit<float> split_rows(const Tensor<float>&, double, std::uint64_t);
extern template RowSplit<double> split_rows(const Tensor<double>&, double, std::uint64_t);

}  // namespace flowgrad
