// The tensor kernels against plain scalar float64 references written here, on sizes that exercise
// both the SIMD body and the padded tail (every width xsimd may pick: 2, 4, 8 or 16 lanes).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "flowgrad/tensor/ops.hpp"
#include "flowgrad/tensor/random.hpp"
#include "unary_reference.hpp"

using namespace flowgrad;

namespace {

constexpr Unary all_unary[] = {Unary::neg,     Unary::exp,      Unary::log,  Unary::tanh,
                               Unary::sigmoid, Unary::softplus, Unary::relu, Unary::leaky_relu,
                               Unary::square,  Unary::sqrt,     Unary::sin,  Unary::cos,
                               Unary::abs,     Unary::pow};
constexpr Binary all_binary[] = {Binary::add, Binary::sub, Binary::mul, Binary::div};

// Rows and columns of 1..1000 elements: below, at and above one and two batch widths, so every
// lane count of the tail and the two-accumulator body of the reductions run.
std::vector<Shape> test_shapes() {
  std::vector<Shape> shapes;
  for (Index n : {1, 3, 7, 8, 17, 64, 1000}) {
    shapes.push_back(Shape{1, n});
    shapes.push_back(Shape{n, 1});
  }
  shapes.push_back(Shape{3, 17});
  shapes.push_back(Shape{17, 3});
  shapes.push_back(Shape{9, 64});
  return shapes;
}

// Tolerances: measured on 10^5 points, xsimd's float and double maths are within 4 ulps of the
// float64 / long-double reference (pow the worst, exp/log/sin/cos about 1). Eight ulps relative
// to the size of the terms involved leaves room for the rounding of gx + gy * f'(x) and is still
// millions of times below the effect of a wrong sign or a missing term.
template <class T>
struct Tol {
  static constexpr double rel = 8 * static_cast<double>(std::numeric_limits<T>::epsilon());
  static constexpr double abs = 1e3 * static_cast<double>(std::numeric_limits<T>::min());
};

template <class T>
bool close(double got, double want, double scale) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  return std::abs(got - want) <= Tol<T>::rel * scale + Tol<T>::abs;
}

std::vector<double> params_for(Unary f) {
  if (f == Unary::leaky_relu) return {0.1};
  if (f == Unary::pow) return {2, 3, 0.5, -1, 1.5};
  return {0};
}

// Inputs inside each op's domain, moderate enough that float sin/cos keep their accuracy; never
// exactly on a kink (random doubles do not hit 0), never near 0 where 1/x or x^-0.5 blow up.
double draw_input(Unary f, double p, Generator& g) {
  const double u = g.uniform();
  switch (f) {
    case Unary::log:
    case Unary::sqrt:
      return 0.05 + 4 * u;
    case Unary::pow:
      if (p == 2 || p == 3) return -3 + 6 * u;
      if (p == -1) return (u < 0.5 ? -1 : 1) * (0.25 + 6 * u);
      return 0.05 + 4 * u;
    case Unary::exp:
      return -10 + 20 * u;
    default:
      return -4 + 8 * u;
  }
}

// tanh' = 1 - y^2 and sigmoid' = y (1 - y) are taken from the rounded forward value y, so their
// error is absolute (a few ulps of 1), not relative to the derivative's size.
double derivative_error_floor(Unary f) {
  return f == Unary::tanh || f == Unary::sigmoid ? 1.0 : 0.0;
}

template <class T>
Tensor<T> random_tensor(Shape s, double lo, double hi, std::uint64_t seed) {
  Generator g(seed);
  return g.uniform<T>(s, static_cast<T>(lo), static_cast<T>(hi));
}

// Multiples of 1/8 in [-8, 8]: every partial sum of up to 10^4 of them is exact in float, so a
// sum in any order is exact and a missing or doubled element cannot hide inside a tolerance.
template <class T>
Tensor<T> dyadic_tensor(Shape s, std::uint64_t seed, double offset = 0) {
  Generator g(seed);
  Tensor<T> t(s);
  for (Index i = 0; i < t.numel(); ++i)
    t[i] = static_cast<T>(static_cast<double>(static_cast<int>(g.below(129)) - 64) / 8 + offset);
  return t;
}

std::string describe(const char* what, Shape s, Index i, double x, double got, double want) {
  std::ostringstream os;
  os.precision(17);
  os << what << " on " << s.str() << " at " << i << ": x = " << x << ", got " << got << ", want "
     << want;
  return os.str();
}

template <class T>
std::string bits_of_row(const Tensor<T>& t) {
  std::string s(static_cast<std::size_t>(t.numel()) * sizeof(T), '\0');
  std::memcpy(s.data(), t.data(), s.size());
  return s;
}

// Runs f and returns the exception message it throws as std::invalid_argument, or "" if none.
template <class F>
std::string invalid_argument_message(F f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("Shape: rank, numel, 2-D view and text for ranks 0, 1, 2 and 3") {
  const Shape s0;
  CHECK(s0.rank() == 0);
  CHECK(s0.numel() == 1);
  CHECK(s0.rows() == 1);
  CHECK(s0.cols() == 1);
  CHECK(s0.str() == "[]");

  const Shape s1{5};
  CHECK(s1.rank() == 1);
  CHECK(s1.numel() == 5);
  CHECK(s1.rows() == 1);
  CHECK(s1.cols() == 5);
  CHECK(s1.str() == "[5]");

  const Shape s2{3, 4};
  CHECK(s2.rank() == 2);
  CHECK(s2[0] == 3);
  CHECK(s2[1] == 4);
  CHECK(s2.numel() == 12);
  CHECK(s2.rows() == 3);
  CHECK(s2.cols() == 4);
  CHECK(s2.str() == "[3, 4]");

  const Shape s3{2, 3, 4};
  CHECK(s3.numel() == 24);
  CHECK(s3.rows() == 6);
  CHECK(s3.cols() == 4);
  CHECK(s3.str() == "[2, 3, 4]");

  CHECK(Shape{0, 4}.numel() == 0);
  CHECK(Shape{3, 4} == Shape{3, 4});
  CHECK_FALSE(Shape{3, 4} == Shape{4, 3});
  CHECK_FALSE(Shape{4} == Shape{1, 4});
  CHECK_THROWS_AS(Shape({2, -1}), std::invalid_argument);
  CHECK_THROWS_AS(Shape({1, 2, 3, 4, 5}), std::invalid_argument);
}

TEST_CASE_TEMPLATE("unary forward matches a float64 reference", T, float, double) {
  std::uint64_t seed = 1;
  for (Unary f : all_unary) {
    for (double p : params_for(f)) {
      for (Shape s : test_shapes()) {
        Generator g(seed++);
        Tensor<T> x(s);
        for (Index i = 0; i < x.numel(); ++i) x[i] = static_cast<T>(draw_input(f, p, g));
        Tensor<T> y;
        unary(f, x, y, static_cast<T>(p));
        REQUIRE(y.shape() == s);
        std::string bad;
        for (Index i = 0; i < x.numel() && bad.empty(); ++i) {
          const double want = testing::ref_f(f, x[i], static_cast<double>(static_cast<T>(p)));
          if (!close<T>(y[i], want, std::abs(want)))
            bad =
                describe(to_string(f), s, i, x[i], y[i], want) + " (p = " + std::to_string(p) + ")";
        }
        CHECK(bad == "");
      }
    }
  }
}

TEST_CASE_TEMPLATE("unary tail gives the same bits as the SIMD body", T, float, double) {
  // The tail runs f on a zero-padded copy; an element must not change value with its position.
  for (Unary f : all_unary) {
    for (double p : params_for(f)) {
      Generator g(7);
      Tensor<T> x(Shape{1, 40});
      for (Index i = 0; i < x.numel(); ++i) x[i] = static_cast<T>(draw_input(f, p, g));
      const Tensor<T> y = unary(f, x, static_cast<T>(p));
      for (Index start : {0, 1, 5, 16, 33}) {
        for (Index len : {1, 2, 3, 5, 7}) {
          Tensor<T> part(Shape{1, len});
          for (Index i = 0; i < len; ++i) part[i] = x[start + i];
          const Tensor<T> yp = unary(f, part, static_cast<T>(p));
          Tensor<T> expected(Shape{1, len});
          for (Index i = 0; i < len; ++i) expected[i] = y[start + i];
          INFO(to_string(f), " p=", p, " start=", start, " len=", len);
          CHECK(bits_of_row(yp) == bits_of_row(expected));
        }
      }
    }
  }
}

TEST_CASE_TEMPLATE("unary_backward accumulates gy * f'(x) into gx", T, float, double) {
  std::uint64_t seed = 1000;
  for (Unary f : all_unary) {
    for (double p : params_for(f)) {
      for (Shape s : test_shapes()) {
        Generator g(seed++);
        Tensor<T> x(s);
        for (Index i = 0; i < x.numel(); ++i) x[i] = static_cast<T>(draw_input(f, p, g));
        const T pt = static_cast<T>(p);
        const Tensor<T> y = unary(f, x, pt);
        const Tensor<T> gy = g.uniform<T>(s, T(-2), T(2));
        const Tensor<T> gx0 = g.uniform<T>(s, T(-1), T(1));
        Tensor<T> gx = gx0;
        unary_backward(f, x, y, gy, gx, pt);
        std::string bad;
        for (Index i = 0; i < x.numel() && bad.empty(); ++i) {
          const double d = testing::ref_df(f, x[i], static_cast<double>(pt));
          const double want = static_cast<double>(gx0[i]) + static_cast<double>(gy[i]) * d;
          const double scale =
              std::abs(gx0[i]) + std::abs(gy[i]) * (std::abs(d) + derivative_error_floor(f));
          if (!close<T>(gx[i], want, scale))
            bad = describe(to_string(f), s, i, x[i], gx[i], want) + " (p = " + std::to_string(p) +
                  ")";
        }
        CHECK(bad == "");
      }
    }
  }
}

TEST_CASE_TEMPLATE("unary_backward rejects mismatched shapes", T, float, double) {
  const Tensor<T> x(Shape{3, 4}, T(1)), y(Shape{3, 4}, T(1)), gy(Shape{3, 4}, T(1));
  Tensor<T> gx_bad(Shape{4, 3});
  const std::string msg =
      invalid_argument_message([&] { unary_backward(Unary::exp, x, y, gy, gx_bad); });
  CHECK(contains(msg, "exp"));
  CHECK(contains(msg, "[4, 3]"));
  Tensor<T> gx(Shape{3, 4});
  const Tensor<T> gy_bad(Shape{3, 5});
  CHECK_THROWS_AS(unary_backward(Unary::tanh, x, y, gy_bad, gx), std::invalid_argument);
  const Tensor<T> y_bad(Shape{1, 4});
  CHECK_THROWS_AS(unary_backward(Unary::tanh, x, y_bad, gy, gx), std::invalid_argument);
}

TEST_CASE_TEMPLATE("leaky_relu uses its slope on the negative side only", T, float, double) {
  const Tensor<T> x(Shape{1, 5}, {T(-2), T(-0.5), T(0.25), T(3), T(-10)});
  const Tensor<T> y = unary(Unary::leaky_relu, x, T(0.1));
  CHECK(y[0] == T(-0.2));
  CHECK(y[1] == T(-0.05));
  CHECK(y[2] == T(0.25));
  CHECK(y[3] == T(3));
  CHECK(y[4] == T(-1));
  const Tensor<T> gy(Shape{1, 5}, T(2));
  Tensor<T> gx(Shape{1, 5}, T(1));
  unary_backward(Unary::leaky_relu, x, y, gy, gx, T(0.1));
  CHECK(gx[0] == doctest::Approx(1.2));
  CHECK(gx[1] == doctest::Approx(1.2));
  CHECK(gx[2] == T(3));
  CHECK(gx[3] == T(3));
  CHECK(gx[4] == doctest::Approx(1.2));
}

TEST_CASE_TEMPLATE("pow with exponents 2, 3, 0.5, -1 and 1.5", T, float, double) {
  const Tensor<T> x(Shape{1, 3}, {T(0.25), T(4), T(9)});
  auto at = [&](T p) { return unary(Unary::pow, x, p); };
  const Tensor<T> sq = at(T(2)), cube = at(T(3)), root = at(T(0.5)), inv = at(T(-1)),
                  three_halves = at(T(1.5));
  CHECK(sq[0] == T(0.0625));
  CHECK(sq[2] == T(81));
  CHECK(cube[1] == T(64));
  CHECK(root[0] == T(0.5));
  CHECK(root[2] == T(3));
  CHECK(inv[0] == T(4));
  CHECK(inv[1] == T(0.25));
  CHECK(three_halves[1] == doctest::Approx(8).epsilon(1e-6));
  CHECK(three_halves[2] == doctest::Approx(27).epsilon(1e-6));
  CHECK(three_halves[0] == doctest::Approx(0.125).epsilon(1e-6));
  // Integer exponents work for negative bases too.
  const Tensor<T> neg(Shape{1, 1}, {T(-2)});
  CHECK(unary(Unary::pow, neg, T(3))[0] == T(-8));
  CHECK(unary(Unary::pow, neg, T(2))[0] == T(4));
  CHECK(unary(Unary::pow, neg, T(-1))[0] == T(-0.5));
}

TEST_CASE_TEMPLATE("special values stay finite where the maths is finite", T, float, double) {
  using lim = std::numeric_limits<T>;
  auto one = [](Unary f, T x) { return unary(f, Tensor<T>(Shape{1, 1}, x))[0]; };
  auto grad = [](Unary f, T x) {
    const Tensor<T> xt(Shape{1, 1}, x);
    const Tensor<T> y = unary(f, xt);
    Tensor<T> gx(Shape{1, 1}, T(0));
    unary_backward(f, xt, y, Tensor<T>(Shape{1, 1}, T(1)), gx);
    return gx[0];
  };

  SUBCASE("softplus") {
    CHECK(one(Unary::softplus, T(100)) == T(100));
    const T tiny = one(Unary::softplus, T(-100));
    CHECK(std::isfinite(tiny));
    CHECK(tiny >= T(0));
    if constexpr (std::is_same_v<T, double>)
      CHECK(tiny == doctest::Approx(std::exp(-100.0)).epsilon(1e-12));
    else
      CHECK(tiny <= T(1e-38));  // exp(-100) is below float's normal range
    CHECK(one(Unary::softplus, T(0)) == doctest::Approx(std::log(2.0)).epsilon(1e-7));
    CHECK(grad(Unary::softplus, T(100)) == T(1));
    CHECK(grad(Unary::softplus, T(-100)) >= T(0));
    CHECK(grad(Unary::softplus, T(-100)) <= T(1e-38));
    CHECK(grad(Unary::softplus, T(0)) == T(0.5));
  }
  SUBCASE("log near and at zero") {
    const T small = one(Unary::log, T(1e-30));
    CHECK(std::isfinite(small));
    CHECK(small == doctest::Approx(std::log(1e-30)).epsilon(1e-6));
    CHECK(one(Unary::log, T(0)) == -lim::infinity());
    if constexpr (std::is_same_v<T, double>)
      CHECK(one(Unary::log, 1e-300) == doctest::Approx(std::log(1e-300)).epsilon(1e-12));
  }
  SUBCASE("exp of large inputs") {
    if constexpr (std::is_same_v<T, double>) {
      const double big = one(Unary::exp, 100.0);
      CHECK(std::isfinite(big));
      CHECK(big == doctest::Approx(std::exp(100.0)).epsilon(1e-13));
    } else {
      CHECK(one(Unary::exp, 100.0f) == lim::infinity());
    }
    const T tiny = one(Unary::exp, T(-100));
    CHECK_FALSE(std::isnan(tiny));
    CHECK(tiny >= T(0));
    CHECK(tiny <= T(1e-38));
    CHECK(one(Unary::exp, -lim::infinity()) == T(0));
  }
  SUBCASE("tanh saturates without NaN in the gradient") {
    CHECK(std::abs(one(Unary::tanh, T(20)) - T(1)) <= lim::epsilon());
    CHECK(std::abs(one(Unary::tanh, T(-20)) + T(1)) <= lim::epsilon());
    for (T x : {T(20), T(-20), T(100), T(-100)}) {
      const T g = grad(Unary::tanh, x);
      CHECK_FALSE(std::isnan(g));
      CHECK(std::abs(g) <= 2 * lim::epsilon());
    }
  }
  SUBCASE("sigmoid at +-100") {
    CHECK(one(Unary::sigmoid, T(100)) == T(1));
    const T lo = one(Unary::sigmoid, T(-100));
    CHECK(lo >= T(0));
    CHECK(lo <= T(1e-38));
    for (T x : {T(100), T(-100)}) {
      const T g = grad(Unary::sigmoid, x);
      CHECK_FALSE(std::isnan(g));
      CHECK(std::abs(g) <= T(1e-38));
    }
  }
}

TEST_CASE_TEMPLATE("binary ops are exactly the rounded float64 result", T, float, double) {
  // +, -, *, / of two T values, computed in double and rounded to T, is the correctly rounded
  // result (double has more than twice float's precision), so the kernels must match bit for bit.
  for (Binary f : all_binary) {
    std::uint64_t seed = 50;
    for (Shape s : test_shapes()) {
      const Tensor<T> a = random_tensor<T>(s, -3, 3, seed++);
      Tensor<T> b = random_tensor<T>(s, 0.5, 4, seed++);
      Tensor<T> out;
      binary(f, a, b, out);
      REQUIRE(out.shape() == s);
      std::string bad;
      for (Index i = 0; i < a.numel() && bad.empty(); ++i) {
        const double x = a[i], y = b[i];
        const double exact = f == Binary::add   ? x + y
                             : f == Binary::sub ? x - y
                             : f == Binary::mul ? x * y
                                                : x / y;
        if (out[i] != static_cast<T>(exact)) bad = describe(to_string(f), s, i, x, out[i], exact);
      }
      CHECK(bad == "");
    }
  }
}

TEST_CASE_TEMPLATE("binary broadcasting of rows, columns and scalars", T, float, double) {
  auto apply = [](Binary f, double x, double y) {
    switch (f) {
      case Binary::add:
        return x + y;
      case Binary::sub:
        return x - y;
      case Binary::mul:
        return x * y;
      case Binary::div:
        return x / y;
    }
    return std::nan("");
  };
  struct Case {
    Shape a, b;
  };
  // Widths 1, 2 and 4 divide the SIMD width and take the flat paths; 37 rows leave a tail.
  for (Index m : {3, 5, 37}) {
    for (Index n : {1, 2, 4, 8, 17}) {
      const Shape full{m, n};
      const std::vector<Case> cases = {
          {full, Shape{1, n}},        {Shape{1, n}, full},        {full, Shape{m, 1}},
          {Shape{m, 1}, full},        {full, Shape{1, 1}},        {Shape{1, 1}, full},
          {Shape{m, 1}, Shape{1, n}}, {Shape{1, n}, Shape{m, 1}}, {full, full},
      };
      std::uint64_t seed = 300;
      for (const Case& c : cases) {
        const Tensor<T> a = random_tensor<T>(c.a, -3, 3, seed++);
        const Tensor<T> b = random_tensor<T>(c.b, 0.5, 4, seed++);
        for (Binary f : all_binary) {
          Tensor<T> out;
          binary(f, a, b, out);
          INFO(to_string(f), " ", c.a.str(), " with ", c.b.str());
          REQUIRE(out.shape() == full);
          std::string bad;
          for (Index i = 0; i < m && bad.empty(); ++i) {
            for (Index j = 0; j < n && bad.empty(); ++j) {
              const double x = a(a.rows() == 1 ? 0 : i, a.cols() == 1 ? 0 : j);
              const double y = b(b.rows() == 1 ? 0 : i, b.cols() == 1 ? 0 : j);
              const T want = static_cast<T>(apply(f, x, y));
              if (out(i, j) != want)
                bad = describe(to_string(f), full, i * n + j, x, out(i, j), want);
            }
          }
          CHECK(bad == "");
        }
      }
    }
  }
}

TEST_CASE_TEMPLATE("binary shape errors name the op and both shapes", T, float, double) {
  const Tensor<T> a(Shape{3, 4}, T(1)), b(Shape{2, 4}, T(1));
  for (Binary f : all_binary) {
    const std::string msg = invalid_argument_message([&] { binary(f, a, b); });
    INFO(msg);
    CHECK(contains(msg, to_string(f)));
    CHECK(contains(msg, "[3, 4]"));
    CHECK(contains(msg, "[2, 4]"));
  }
  CHECK_THROWS_AS(binary(Binary::add, a, Tensor<T>(Shape{3, 2}, T(1))), std::invalid_argument);
  CHECK_THROWS_AS(binary(Binary::mul, a, Tensor<T>(Shape{4, 3}, T(1))), std::invalid_argument);
  CHECK_THROWS_AS(binary(Binary::sub, Tensor<T>(Shape{1, 3}, T(1)), a), std::invalid_argument);
  CHECK_THROWS_AS(binary(Binary::add, a, Tensor<T>(Shape{2, 3, 4}, T(1))), std::invalid_argument);
  const std::string col = invalid_argument_message([&] {
    binary(Binary::div, Tensor<T>(Shape{2, 1}, T(1)), a);
  });
  CHECK(contains(col, "div"));
  CHECK(contains(col, "[2, 1]"));
}

TEST_CASE_TEMPLATE("binary may write into an input of the output's shape", T, float, double) {
  const Tensor<T> a0 = dyadic_tensor<T>(Shape{3, 17}, 1);
  const Tensor<T> row = dyadic_tensor<T>(Shape{1, 17}, 2);
  const Tensor<T> expected = binary(Binary::sub, a0, row);

  Tensor<T> a = a0;
  binary(Binary::sub, a, row, a);
  CHECK(bits_of_row(a) == bits_of_row(expected));

  Tensor<T> b = a0;
  binary(Binary::add, row, b, b);
  CHECK(bits_of_row(b) == bits_of_row(binary(Binary::add, row, a0)));

  Tensor<T> c = a0;
  binary(Binary::mul, c, c, c);
  CHECK(bits_of_row(c) == bits_of_row(unary(Unary::square, a0)));

  // Broadcasting into a smaller input would read values it has already overwritten.
  Tensor<T> r = row;
  CHECK_THROWS_AS(binary(Binary::add, r, a0, r), std::invalid_argument);
}

TEST_CASE_TEMPLATE("axpy adds alpha x exactly", T, float, double) {
  for (Shape s : test_shapes()) {
    const Tensor<T> x = dyadic_tensor<T>(s, 11);
    const Tensor<T> acc0 = dyadic_tensor<T>(s, 12);
    Tensor<T> acc = acc0;
    axpy(T(-0.75), x, acc);
    std::string bad;
    for (Index i = 0; i < x.numel() && bad.empty(); ++i) {
      const double want = static_cast<double>(acc0[i]) - 0.75 * x[i];
      if (acc[i] != static_cast<T>(want)) bad = describe("axpy", s, i, x[i], acc[i], want);
    }
    CHECK(bad == "");
  }
  Tensor<T> acc(Shape{3, 4});
  CHECK_THROWS_AS(axpy(T(1), Tensor<T>(Shape{4, 3}), acc), std::invalid_argument);
}

TEST_CASE_TEMPLATE("accumulate_reduced sums over the broadcast dimensions", T, float, double) {
  for (Shape gs : {Shape{3, 17}, Shape{17, 3}, Shape{64, 9}, Shape{1, 17}, Shape{17, 1},
                   Shape{37, 2}, Shape{37, 4}, Shape{37, 1}}) {
    const Index m = gs.rows(), n = gs.cols();
    const Tensor<T> g = dyadic_tensor<T>(gs, 21);
    for (Shape as : {Shape{1, n}, Shape{m, 1}, Shape{1, 1}, gs}) {
      const Tensor<T> acc0 = dyadic_tensor<T>(as, 22);
      Tensor<T> acc = acc0;
      accumulate_reduced(g, acc);
      REQUIRE(acc.shape() == as);
      std::vector<double> want(static_cast<std::size_t>(as.numel()));
      for (Index i = 0; i < as.numel(); ++i) want[static_cast<std::size_t>(i)] = acc0[i];
      for (Index i = 0; i < m; ++i)
        for (Index j = 0; j < n; ++j)
          want[static_cast<std::size_t>((as.rows() == 1 ? 0 : i) * as.cols() +
                                        (as.cols() == 1 ? 0 : j))] += g(i, j);
      std::string bad;
      for (Index i = 0; i < as.numel() && bad.empty(); ++i) {
        const double w = want[static_cast<std::size_t>(i)];
        if (acc[i] != static_cast<T>(w)) bad = describe("accumulate_reduced", as, i, 0, acc[i], w);
      }
      INFO(gs.str(), " into ", as.str());
      CHECK(bad == "");
    }
  }
  const Tensor<T> g(Shape{3, 4}, T(1));
  Tensor<T> wrong_rows(Shape{2, 4}), wrong_cols(Shape{1, 3});
  const std::string msg = invalid_argument_message([&] { accumulate_reduced(g, wrong_rows); });
  CHECK(contains(msg, "[3, 4]"));
  CHECK(contains(msg, "[2, 4]"));
  CHECK_THROWS_AS(accumulate_reduced(g, wrong_cols), std::invalid_argument);
}

TEST_CASE_TEMPLATE("sum, mean and max over everything, over rows and over columns", T, float,
                   double) {
  std::vector<Shape> shapes = test_shapes();
  shapes.push_back(Shape{1000, 7});
  shapes.push_back(Shape{5, 1000});
  // Rows as wide as a 2-D flow's (the flat column-sum path), with a tail.
  for (Index n : {1, 2, 4}) shapes.push_back(Shape{1001, n});
  std::uint64_t seed = 500;
  for (Shape s : shapes) {
    // An offset of -9 makes every value negative, so a maximum that starts from 0 is caught.
    for (double offset : {0.0, -9.0}) {
      const Tensor<T> x = dyadic_tensor<T>(s, seed++, offset);
      const Index m = s.rows(), n = s.cols();
      INFO(s.str(), " offset ", offset);

      double total = 0, top = -std::numeric_limits<double>::infinity();
      std::vector<double> col_sum(static_cast<std::size_t>(n), 0.0),
          row_sum(static_cast<std::size_t>(m), 0.0);
      std::vector<double> col_max(static_cast<std::size_t>(n), top),
          row_max(static_cast<std::size_t>(m), top);
      for (Index i = 0; i < m; ++i) {
        for (Index j = 0; j < n; ++j) {
          const double v = x(i, j);
          const auto ui = static_cast<std::size_t>(i), uj = static_cast<std::size_t>(j);
          total += v;
          top = std::max(top, v);
          col_sum[uj] += v;
          row_sum[ui] += v;
          col_max[uj] = std::max(col_max[uj], v);
          row_max[ui] = std::max(row_max[ui], v);
        }
      }

      Tensor<T> out;
      sum(x, out);
      CHECK(out.shape() == Shape{1, 1});
      CHECK(out[0] == static_cast<T>(total));
      mean(x, out);
      CHECK(out.shape() == Shape{1, 1});
      CHECK(out[0] == static_cast<T>(total / static_cast<double>(m * n)));
      max(x, out);
      CHECK(out[0] == static_cast<T>(top));

      sum(x, 0, out);
      REQUIRE(out.shape() == Shape{1, n});
      for (Index j = 0; j < n; ++j)
        CHECK(out[j] == static_cast<T>(col_sum[static_cast<std::size_t>(j)]));
      sum(x, 1, out);
      REQUIRE(out.shape() == Shape{m, 1});
      for (Index i = 0; i < m; ++i)
        CHECK(out[i] == static_cast<T>(row_sum[static_cast<std::size_t>(i)]));

      // mean over a dim multiplies by a rounded 1/count: one extra rounding allowed.
      const double ulp2 = 2 * std::numeric_limits<T>::epsilon();
      mean(x, 0, out);
      REQUIRE(out.shape() == Shape{1, n});
      for (Index j = 0; j < n; ++j) {
        const double w = col_sum[static_cast<std::size_t>(j)] / static_cast<double>(m);
        CHECK(std::abs(out[j] - w) <= ulp2 * std::abs(w));
      }
      mean(x, 1, out);
      REQUIRE(out.shape() == Shape{m, 1});
      for (Index i = 0; i < m; ++i) {
        const double w = row_sum[static_cast<std::size_t>(i)] / static_cast<double>(n);
        CHECK(std::abs(out[i] - w) <= ulp2 * std::abs(w));
      }

      max(x, 0, out);
      REQUIRE(out.shape() == Shape{1, n});
      for (Index j = 0; j < n; ++j)
        CHECK(out[j] == static_cast<T>(col_max[static_cast<std::size_t>(j)]));
      max(x, 1, out);
      REQUIRE(out.shape() == Shape{m, 1});
      for (Index i = 0; i < m; ++i)
        CHECK(out[i] == static_cast<T>(row_max[static_cast<std::size_t>(i)]));
    }
  }
}

TEST_CASE_TEMPLATE("sum of arbitrary values is accurate to the summation bound", T, float, double) {
  const Tensor<T> x = random_tensor<T>(Shape{7, 1000}, -1, 1, 77);
  double total = 0, abs_total = 0;
  for (Index i = 0; i < x.numel(); ++i) {
    total += x[i];
    abs_total += std::abs(x[i]);
  }
  // Each of the kernel's accumulators adds at most numel / 2 terms; a sqrt(n) typical error is
  // far below this, and one dropped element (|x| ~ 0.5) far above it for float and double.
  const double bound = 64 * std::numeric_limits<T>::epsilon() * abs_total;
  CHECK(std::abs(sum(x) - total) <= bound);
}

TEST_CASE_TEMPLATE("logsumexp over rows and columns matches a shifted float64 reference", T, float,
                   double) {
  std::vector<Shape> shapes = test_shapes();
  shapes.push_back(Shape{1000, 3});
  std::uint64_t seed = 900;
  for (Shape s : shapes) {
    for (double shift : {0.0, 80.0, -200.0}) {
      const Tensor<T> x = random_tensor<T>(s, shift - 5, shift + 5, seed++);
      const Index m = s.rows(), n = s.cols();
      for (int dim : {0, 1}) {
        Tensor<T> out;
        logsumexp(x, dim, out);
        const Index outer = dim == 0 ? n : m, inner = dim == 0 ? m : n;
        REQUIRE(out.shape() == (dim == 0 ? Shape{1, n} : Shape{m, 1}));
        std::string bad;
        for (Index o = 0; o < outer && bad.empty(); ++o) {
          auto at = [&](Index k) -> double { return dim == 0 ? x(k, o) : x(o, k); };
          double mx = -std::numeric_limits<double>::infinity();
          for (Index k = 0; k < inner; ++k) mx = std::max(mx, at(k));
          double acc = 0;
          for (Index k = 0; k < inner; ++k) acc += std::exp(at(k) - mx);
          const double want = mx + std::log(acc);
          // The sum of exponentials carries a relative error growing with the term count's
          // logarithm (a few ulps per level); the log turns it into an absolute error.
          const double scale = std::abs(want) + 1 + std::log2(static_cast<double>(inner));
          if (!close<T>(out[o], want, scale)) bad = describe("logsumexp", s, o, dim, out[o], want);
        }
        INFO("dim ", dim, " shift ", shift);
        CHECK(bad == "");
      }
    }
  }
}

TEST_CASE_TEMPLATE("logsumexp of huge and infinite values", T, float, double) {
  const T inf = std::numeric_limits<T>::infinity();
  auto lse = [](Tensor<T> x, int dim) {
    Tensor<T> out;
    logsumexp(x, dim, out);
    return out;
  };
  const double log2 = std::log(2.0);
  CHECK(lse(Tensor<T>(Shape{1, 2}, {T(1000), T(1000)}), 1)[0] ==
        doctest::Approx(1000 + log2).epsilon(1e-7));
  CHECK(lse(Tensor<T>(Shape{2, 1}, {T(1000), T(1000)}), 0)[0] ==
        doctest::Approx(1000 + log2).epsilon(1e-7));
  CHECK(lse(Tensor<T>(Shape{1, 2}, {T(-1000), T(-1000)}), 1)[0] ==
        doctest::Approx(-1000 + log2).epsilon(1e-7));
  for (int dim : {0, 1}) {
    INFO("dim ", dim);
    const Shape s = dim == 1 ? Shape{1, 9} : Shape{9, 1};
    const Tensor<T> all_neg_inf(s, -inf);
    CHECK(lse(all_neg_inf, dim)[0] == -inf);
    Tensor<T> one_finite(s, -inf);
    one_finite[4] = T(0.5);
    CHECK(lse(one_finite, dim)[0] == T(0.5));
    Tensor<T> with_pos_inf(s, T(1));
    with_pos_inf[8] = inf;
    CHECK(lse(with_pos_inf, dim)[0] == inf);
  }
  // Rows with -inf next to rows without: each row stands alone.
  const Tensor<T> mixed(Shape{2, 3}, {-inf, -inf, -inf, T(0), T(0), -inf});
  const Tensor<T> by_row = lse(mixed, 1);
  CHECK(by_row[0] == -inf);
  CHECK(by_row[1] == doctest::Approx(log2).epsilon(1e-7));
  const Tensor<T> by_col = lse(mixed, 0);
  CHECK(by_col[0] == T(0));
  CHECK(by_col[1] == T(0));
  CHECK(by_col[2] == -inf);
}

TEST_CASE_TEMPLATE("reductions reject empty tensors, rank above 2 and bad dims", T, float, double) {
  const Tensor<T> empty(Shape{0, 3});
  const Tensor<T> cube(Shape{2, 3, 4}, T(1));
  const Tensor<T> ok(Shape{2, 3}, T(1));
  Tensor<T> out;
  CHECK_THROWS_AS(mean(empty, out), std::invalid_argument);
  CHECK_THROWS_AS(max(empty, out), std::invalid_argument);
  for (int dim : {0, 1}) {
    CHECK_THROWS_AS(mean(empty, dim, out), std::invalid_argument);
    CHECK_THROWS_AS(max(empty, dim, out), std::invalid_argument);
    CHECK_THROWS_AS(logsumexp(empty, dim, out), std::invalid_argument);
    CHECK(contains(invalid_argument_message([&] { sum(cube, dim, out); }), "sum"));
    CHECK(contains(invalid_argument_message([&] { mean(cube, dim, out); }), "[2, 3, 4]"));
    CHECK(contains(invalid_argument_message([&] { max(cube, dim, out); }), "max"));
    CHECK(contains(invalid_argument_message([&] { logsumexp(cube, dim, out); }), "logsumexp"));
  }
  for (int dim : {-1, 2}) {
    CHECK_THROWS_AS(sum(ok, dim, out), std::invalid_argument);
    CHECK_THROWS_AS(mean(ok, dim, out), std::invalid_argument);
    CHECK_THROWS_AS(max(ok, dim, out), std::invalid_argument);
    CHECK_THROWS_AS(logsumexp(ok, dim, out), std::invalid_argument);
  }
  // The sum of nothing is 0, as in every array library.
  CHECK(sum(empty) == T(0));
}

TEST_CASE_TEMPLATE("all_finite finds a NaN or an infinity in the SIMD body and in the tail", T,
                   float, double) {
  for (Index n : {1, 7, 8, 17, 64, 1000}) {
    Tensor<T> x = random_tensor<T>(Shape{1, n}, -1e30, 1e30, 900);
    CHECK(all_finite(x));
    for (Index at : {Index(0), n / 2, n - 1}) {
      for (T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                    -std::numeric_limits<T>::infinity()}) {
        Tensor<T> y = x;
        y[at] = bad;
        INFO("n ", n, " at ", at, " value ", bad);
        CHECK_FALSE(all_finite(y));
      }
    }
  }
  CHECK(all_finite(Tensor<T>(Shape{0, 2})));
}
