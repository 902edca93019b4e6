#include "flowgrad/data/split.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "flowgrad/tensor/random.hpp"

namespace flowgrad {

// Draws: one permutation of the rows from Generator(seed). The first round(test_fraction * rows)
// rows of the permutation go to test, the rest to train, each in permutation order.
template <Scalar T>
RowSplit<T> split_rows(const Tensor<T>& data, double test_fraction, std::uint64_t seed) {
  const Index rows = data.rows();
  if (!(test_fraction > 0 && test_fraction < 1))
    throw std::invalid_argument("split_rows: test_fraction must lie in (0, 1), got " +
                                std::to_string(test_fraction));
  const Index n_test = std::max<Index>(1, std::llround(test_fraction * static_cast<double>(rows)));
  if (rows < 2 || n_test >= rows)
    throw std::invalid_argument("split_rows: " + std::to_string(rows) + " rows cannot give " +
                                std::to_string(n_test) + " test rows and a non-empty train part");
  Generator gen(seed);
  const std::vector<Index> perm = gen.permutation(rows);
  const Index c = data.cols();
  RowSplit<T> s;
  s.test = Tensor<T>(Shape{n_test, c});
  s.train = Tensor<T>(Shape{rows - n_test, c});
  for (Index i = 0; i < rows; ++i) {
    const T* from = data.data() + perm[static_cast<std::size_t>(i)] * c;
    T* to = i < n_test ? s.test.data() + i * c : s.train.data() + (i - n_test) * c;
    std::copy_n(from, c, to);
  }
  return s;
}

template RowSplit<float> split_rows(const Tensor<float>&, double, std::uint64_t);
template RowSplit<double> split_rows(const Tensor<double>&, double, std::uint64_t);

}  // namespace flowgrad
