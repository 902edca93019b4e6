// solve_triangular(): residuals of A x = b in every form, gradients against central differences
// (only A's triangle receives any), and its errors.
#include <doctest/doctest.h>

#include <cmath>

#include "flowgrad/autodiff/gradcheck.hpp"
#include "flowgrad/autodiff/ops.hpp"
#include "flowgrad/tensor/random.hpp"
#include "gradcheck_helpers.hpp"

using namespace flowgrad;

namespace {

// A well-conditioned triangular matrix: diagonal in [1, 2], off-diagonal entries small; entries
// outside the triangle are noise the op must ignore.
Tensor<double> triangular(Generator& gen, Index m) {
  Tensor<double> a = gen.normal<double>(Shape{m, m}, 0.0, 0.3);
  for (Index i = 0; i < m; ++i) a(i, i) = 1 + gen.uniform();
  return a;
}

}  // namespace

TEST_CASE("solve_triangular: A x = b for every row, lower and upper, unit diagonal or not") {
  Generator gen(81);
  const Index m = 5, n = 4;
  for (bool lower : {true, false})
    for (bool unit : {false, true}) {
      CAPTURE(lower);
      CAPTURE(unit);
      const Tensor<double> a = triangular(gen, m), b = gen.normal<double>(Shape{n, m});
      Tape<double> t;
      const Tensor<double> x = solve_triangular(t.constant(a), t.constant(b), lower, unit).value();
      for (Index r = 0; r < n; ++r)
        for (Index i = 0; i < m; ++i) {
          double ax = 0;
          for (Index k = 0; k < m; ++k) {
            const bool in = lower ? k <= i : k >= i;
            if (in) ax += (k == i && unit ? 1.0 : a(i, k)) * x(r, k);
          }
          CHECK(ax == doctest::Approx(b(r, i)).epsilon(1e-12));
        }
    }
}

TEST_CASE("solve_triangular: gradcheck with respect to A and B") {
  Generator gen(82);
  for (bool lower : {true, false})
    for (bool unit : {false, true}) {
      CAPTURE(lower);
      CAPTURE(unit);
      const Tensor<double> a = triangular(gen, 4), b = gen.normal<double>(Shape{3, 4});
      CHECK_GRADCHECK(gradcheck(
          [&](Tape<double>&, std::span<const Var<double>> in) {
            return testing::weighted_sum(solve_triangular(in[0], in[1], lower, unit));
          },
          {a, b}));
      // Entries outside the triangle (and a unit diagonal) get exactly nothing.
      Tape<double> t;
      const Var<double> av = t.constant(a, true);
      t.backward(sum(solve_triangular(av, t.constant(b), lower, unit)));
      for (Index i = 0; i < 4; ++i)
        for (Index k = 0; k < 4; ++k)
          if ((lower ? k > i : k < i) || (unit && i == k)) CHECK(av.grad()(i, k) == 0.0);
    }
}

TEST_CASE("solve_triangular: bad shapes and a zero on the diagonal are refused") {
  Tape<double> t;
  const auto a = t.constant(Tensor<double>(Shape{3, 3}, 1.0));
  CHECK_THROWS_AS(solve_triangular(a, t.constant(Tensor<double>(Shape{2, 4}, 1.0)), true),
                  std::invalid_argument);
  Tensor<double> z(Shape{2, 2}, 1.0);
  z(1, 1) = 0;
  CHECK_THROWS_AS(
      solve_triangular(t.constant(z), t.constant(Tensor<double>(Shape{1, 2}, 1.0)), true),
      std::invalid_argument);
  CHECK_NOTHROW(
      solve_triangular(t.constant(z), t.constant(Tensor<double>(Shape{1, 2}, 1.0)), true, true));
}
