#pragma once
// A data set's rows split into train and test, and batches of rows drawn at random.
#include <cstdint>

#include "flowgrad/tensor/random.hpp"

namespace train2d {

using flowgrad::Generator;
using flowgrad::Index;
using flowgrad::TensorF;

// Splits rows into train and test after a seeded shuffle; test gets round(test_fraction * rows),
// at least 1. Throws std::invalid_argument when test_fraction is not in (0, 1) or either part
// would be empty.
struct Split {
  TensorF train, test;
};
Split split_rows(const TensorF& data, double test_fraction, std::uint64_t seed);

// Rows of `data` picked uniformly at random (with replacement) into `out` ([n, cols]), reusing
// out's buffer. Throws std::invalid_argument when data has no rows or n < 0.
void sample_rows(const TensorF& data, Index n, Generator& gen, TensorF& out);

}  // namespace train2d
