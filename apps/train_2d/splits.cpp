// Held-out splits of a data set's rows, and batches drawn from them.
#include "splits.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace train2d {

namespace {
void copy_row(const TensorF& src, Index from, TensorF& dst, Index to) {
  const Index c = src.cols();
  std::copy_n(src.data() + from * c, c, dst.data() + to * c);
}
}  // namespace

// Draws: one permutation of the rows from Generator(seed). The first round(test_fraction * rows)
// rows of the permutation go to test, the rest to train, each in permutation order.
Split split_rows(const TensorF& data, double test_fraction, std::uint64_t seed) {
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
  Split s;
  s.test = TensorF(flowgrad::Shape{n_test, data.cols()});
  s.train = TensorF(flowgrad::Shape{rows - n_test, data.cols()});
  for (Index i = 0; i < rows; ++i) {
    const Index r = perm[static_cast<std::size_t>(i)];
    if (i < n_test)
      copy_row(data, r, s.test, i);
    else
      copy_row(data, r, s.train, i - n_test);
  }
  return s;
}

// Draws: below(rows) for each output row in order.
void sample_rows(const TensorF& data, Index n, Generator& gen, TensorF& out) {
  if (n < 0) throw std::invalid_argument("sample_rows: negative count " + std::to_string(n));
  if (data.rows() == 0 || data.cols() == 0)
    throw std::invalid_argument("sample_rows: no data to sample from");
  out.resize(flowgrad::Shape{n, data.cols()});
  const auto rows = static_cast<std::uint64_t>(data.rows());
  for (Index i = 0; i < n; ++i) copy_row(data, static_cast<Index>(gen.below(rows)), out, i);
}

}  // namespace train2d
