#pragma once
// What the data-parallel tests share (test_data_parallel_local.cpp over thread ranks,
// mpi/test_data_parallel.cpp over MPI ranks): their data, and how far two runs are apart.
#include <algorithm>
#include <cmath>
#include <vector>

#include "flowgrad/autodiff/module.hpp"

namespace flowgrad::testing {

// n rows of 3-D data with curvature and correlation, the same in every process and thread; columns
// past the third (a context) are uniform.
template <Scalar T>
Tensor<T> curved_data(Index n, Index cols = 3) {
  Generator gen(7);
  Tensor<T> d(Shape{n, cols});
  for (Index i = 0; i < n; ++i) {
    const double a = gen.normal(), b = gen.normal(), c = gen.normal();
    d(i, 0) = static_cast<T>(a);
    d(i, 1) = static_cast<T>(0.5 * a * a + 0.3 * b);
    d(i, 2) = static_cast<T>(std::sin(a) + 0.2 * c);
    for (Index j = 3; j < cols; ++j) d(i, j) = static_cast<T>(gen.uniform());
  }
  return d;
}

// Every parameter's values, in order, as double.
template <Scalar T>
std::vector<double> parameters_of(Module<T>& m) {
  std::vector<double> out;
  for (Parameter<T>* p : m.parameters())
    out.insert(out.end(), p->value.data(), p->value.data() + p->value.numel());
  return out;
}

// The largest |a - b| / max(1, |b|).
inline double max_relative(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    worst = std::max(worst, std::abs(a[i] - b[i]) / std::max(1.0, std::abs(b[i])));
  return a.size() == b.size() ? worst : HUGE_VAL;
}

}  // namespace flowgrad::testing
