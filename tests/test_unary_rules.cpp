// The elementwise rules (tensor/detail/unary_rules.hpp) through every kernel that runs them: each
// function and derivative against a float64 reference written here with <cmath>, out to large |x|
// where a careless formula overflows or cancels; the fused activation kernels against the plain
// ones, bit for bit; and the names checkpoints and node names use.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "flowgrad/tensor/activation.hpp"
#include "flowgrad/tensor/detail/fused.hpp"
#include "flowgrad/tensor/ops.hpp"
#include "flowgrad/tensor/random.hpp"
#include "unary_reference.hpp"

using namespace flowgrad;
using flowgrad::testing::ref_df;
using flowgrad::testing::ref_f;

namespace {

const std::vector<double> kWide = {-80, -30, -20, -10, -3, -1, -0.25, 0.25, 1, 3, 10, 20, 30, 80};
const std::vector<double> kPositive = {1e-30, 1e-3, 0.25, 1, 3, 10, 80, 1e30};
const std::vector<double> kModerate = {1e-3, 0.25, 1, 3, 10, 80};

struct Case {
  Unary f;
  double p;
  const std::vector<double>* xs;
};

const std::vector<Case> kCases = {
    {Unary::neg, 0, &kWide},          {Unary::exp, 0, &kWide},
    {Unary::log, 0, &kPositive},      {Unary::tanh, 0, &kWide},
    {Unary::sigmoid, 0, &kWide},      {Unary::softplus, 0, &kWide},
    {Unary::relu, 0, &kWide},         {Unary::leaky_relu, 0.01, &kWide},
    {Unary::leaky_relu, 0.2, &kWide}, {Unary::square, 0, &kWide},
    {Unary::sqrt, 0, &kPositive},     {Unary::sin, 0, &kWide},
    {Unary::cos, 0, &kWide},          {Unary::abs, 0, &kWide},
    {Unary::pow, 2, &kWide},          {Unary::pow, 3, &kWide},
    {Unary::pow, -1, &kWide},         {Unary::pow, 0.5, &kModerate},
    {Unary::pow, 1.5, &kModerate},    {Unary::pow, 2.5, &kModerate},
};

// The activations, with the Unary of the same function where there is one.
struct ActivationCase {
  Activation act;
  Unary f;  // unused for none, the identity
  const char* name;
};
const ActivationCase kActivationCases[] = {
    {Activation::none, Unary::abs, "none"},
    {Activation::relu, Unary::relu, "relu"},
    {Activation::leaky_relu, Unary::leaky_relu, "leaky_relu"},
    {Activation::tanh, Unary::tanh, "tanh"},
    {Activation::sigmoid, Unary::sigmoid, "sigmoid"},
    {Activation::softplus, Unary::softplus, "softplus"},
};

double ref_act(const ActivationCase& c, double x, double slope) {
  return c.act == Activation::none ? x : ref_f(c.f, x, slope);
}
double ref_dact(const ActivationCase& c, double x, double slope) {
  return c.act == Activation::none ? 1 : ref_df(c.f, x, slope);
}

// Relative tolerances some hundred ulps wide: far above xsimd's few ulps, far below the error of a
// wrong sign or a dropped term.
template <class T>
constexpr double kRel = std::is_same_v<T, float> ? 1e-5 : 1e-12;

// tanh' = 1 - y^2 and sigmoid' = y (1 - y) are computed from the rounded y: where y rounds to
// +-1 (tanh beyond |x| ~ 9 in float, sigmoid beyond x ~ 17) the derivative is lost to
// cancellation, so it is exact only to a few ulps of 1, not relative to its own size.
template <class T>
double floor_for(bool from_output_near_one) {
  return from_output_near_one ? 4 * static_cast<double>(std::numeric_limits<T>::epsilon()) : 0;
}

template <class T>
std::string mismatch(const char* what, const char* op, double p, double x, double got, double want,
                     double tol) {
  if (std::abs(got - want) <= tol) return "";
  std::ostringstream os;
  os.precision(17);
  os << op << " (p = " << p << ") " << what << " at x = " << x << ": got " << got << ", want "
     << want;
  return os.str();
}

template <class T>
Tensor<T> tensor_of(const std::vector<double>& xs, bool column) {
  const Index n = static_cast<Index>(xs.size());
  Tensor<T> t(column ? Shape{n, 1} : Shape{1, n});
  for (Index i = 0; i < n; ++i) t[i] = static_cast<T>(xs[static_cast<std::size_t>(i)]);
  return t;
}

}  // namespace

TEST_CASE_TEMPLATE("every unary rule: forward and derivative against float64, out to large |x|", T,
                   float, double) {
  for (int i = 0; i < 14; ++i) {
    bool covered = false;
    for (const Case& c : kCases) covered = covered || c.f == static_cast<Unary>(i);
    CHECK(covered);
  }
  for (const Case& c : kCases) {
    const T p = static_cast<T>(c.p);
    const auto pd = static_cast<double>(p);
    const Tensor<T> x = tensor_of<T>(*c.xs, false);
    const Tensor<T> y = unary(c.f, x, p);
    // gx = 0 + 1 * f'(x): the kernel's derivative itself.
    Tensor<T> gx(x.shape());
    unary_backward(c.f, x, y, Tensor<T>(x.shape(), T(1)), gx, p);
    const bool near_one = c.f == Unary::tanh || c.f == Unary::sigmoid;
    for (Index i = 0; i < x.numel(); ++i) {
      const auto xi = static_cast<double>(x[i]);
      const double want = ref_f(c.f, xi, pd), dwant = ref_df(c.f, xi, pd);
      CHECK(mismatch<T>("forward", to_string(c.f), pd, xi, y[i], want, kRel<T> * std::abs(want)) ==
            "");
      CHECK(mismatch<T>("derivative", to_string(c.f), pd, xi, gx[i], dwant,
                        kRel<T> * std::abs(dwant) + floor_for<T>(near_one)) == "");
    }
  }
}

TEST_CASE_TEMPLATE("every activation, fused: forward and derivative against float64", T, float,
                   double) {
  for (const ActivationCase& c : kActivationCases) {
    for (const bool column : {false, true}) {
      const T slope = T(0.05);
      const auto sd = static_cast<double>(slope);
      const Tensor<T> x = tensor_of<T>(kWide, column);
      // A zero bias: y = act(x + 0) = act(x), as no point is -0.
      Tensor<T> y = x;
      bias_activation(y, Tensor<T>(Shape{x.cols()}), c.act, slope);
      Tensor<T> gz;
      activation_backward(y, Tensor<T>(x.shape(), T(1)), c.act, slope, gz,
                          static_cast<Tensor<T>*>(nullptr));
      const bool near_one = c.act == Activation::tanh || c.act == Activation::sigmoid;
      for (Index i = 0; i < x.numel(); ++i) {
        const auto xi = static_cast<double>(x[i]);
        const double want = ref_act(c, xi, sd), dwant = ref_dact(c, xi, sd);
        CHECK(mismatch<T>("forward", c.name, sd, xi, y[i], want, kRel<T> * std::abs(want)) == "");
        CHECK(mismatch<T>("derivative", c.name, sd, xi, gz[i], dwant,
                          kRel<T> * std::abs(dwant) + floor_for<T>(near_one)) == "");
      }
    }
  }
}

TEST_CASE_TEMPLATE("fused bias_activation and activation_backward give the plain kernels' bits", T,
                   float, double) {
  Generator gen(11);
  // Full rows, and rows narrower than a batch (the fused kernels' flat path).
  for (const Shape s : {Shape{37, 19}, Shape{64, 2}, Shape{5, 1}}) {
    for (const ActivationCase& c : kActivationCases) {
      INFO(c.name, " on ", s.str());
      const T slope = T(0.03);
      const Tensor<T> x = gen.uniform<T>(s, T(-6), T(6));
      const Tensor<T> bias = gen.uniform<T>(Shape{1, s.cols()}, T(-1), T(1));
      const Tensor<T> gy = gen.uniform<T>(s, T(-2), T(2));

      Tensor<T> fused = x;
      bias_activation(fused, bias, c.act, slope);
      const Tensor<T> z = binary(Binary::add, x, bias);
      const Tensor<T> plain = c.act == Activation::none ? z : unary(c.f, z, slope);
      CHECK(std::memcmp(fused.data(), plain.data(),
                        sizeof(T) * static_cast<std::size_t>(s.numel())) == 0);

      Tensor<T> gz;
      activation_backward(fused, gy, c.act, slope, gz, static_cast<Tensor<T>*>(nullptr));
      // gx starts at -0, which fma(gy, f', gx) adds without touching any bit of gy * f', signed
      // zeros included; the fused kernel stores gy * f' itself.
      Tensor<T> gx(s, T(-0.0));
      if (c.act == Activation::none)
        gx = gy;
      else
        unary_backward(c.f, z, plain, gy, gx, slope);
      CHECK(std::memcmp(gz.data(), gx.data(), sizeof(T) * static_cast<std::size_t>(s.numel())) ==
            0);
    }
  }
}

TEST_CASE("to_string and activation_from_string: one name per function, the stored strings") {
  for (const ActivationCase& c : kActivationCases) {
    CHECK(std::string(to_string(c.act)) == c.name);
    CHECK(activation_from_string(c.name) == c.act);
  }
  CHECK_THROWS_WITH_AS(
      activation_from_string("gelu"),
      "unknown activation 'gelu' (none, relu, leaky_relu, tanh, sigmoid, softplus)",
      std::invalid_argument);
  CHECK_THROWS_AS(activation_from_string("Relu"), std::invalid_argument);
  const char* unary_names[] = {"neg",      "exp",  "log",        "tanh",   "sigmoid",
                               "softplus", "relu", "leaky_relu", "square", "sqrt",
                               "sin",      "cos",  "abs",        "pow"};
  for (int i = 0; i < 14; ++i)
    CHECK(std::string(to_string(static_cast<Unary>(i))) == unary_names[i]);
  CHECK(std::string(to_string(Binary::add)) == "add");
  CHECK(std::string(to_string(Binary::sub)) == "sub");
  CHECK(std::string(to_string(Binary::mul)) == "mul");
  CHECK(std::string(to_string(Binary::div)) == "div");
}

// xsimd's double exp turns x / ln 2 into an int64, undefined for NaN, inf and |x| > 6e18 (clang's
// UBSan reports it; fuzz_model found it through a spline's logits): flowgrad's wrappers hand it a
// clamped argument and restore NaN. The values must be the saturated ones, in every lane.
TEST_CASE_TEMPLATE("exp, softplus, sigmoid and tanh at NaN, +-inf and +-1e30: saturated, NaN kept",
                   T, float, double) {
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  const Tensor<T> x(Shape{1, 9}, {nan, inf, -inf, T(1e30), T(-1e30), T(0), T(1), nan, T(-1e30)});
  const Tensor<T> e = unary(Unary::exp, x);
  CHECK(std::isnan(e[0]));
  CHECK(e[1] == inf);
  CHECK(e[2] == T(0));
  CHECK(e[3] == inf);
  CHECK(e[4] == T(0));
  CHECK(e[5] == T(1));
  CHECK(e[6] == doctest::Approx(std::exp(1.0)));
  CHECK(std::isnan(e[7]));
  const Tensor<T> t = unary(Unary::tanh, x);
  CHECK(std::isnan(t[0]));
  CHECK(t[1] == T(1));
  CHECK(t[2] == T(-1));
  CHECK(t[3] == T(1));
  CHECK(t[4] == T(-1));
  const Tensor<T> s = unary(Unary::sigmoid, x);
  CHECK(std::isnan(s[0]));
  CHECK(s[1] == T(1));
  CHECK(s[2] == T(0));
  const Tensor<T> sp = unary(Unary::softplus, x);
  CHECK(std::isnan(sp[0]));
  CHECK(sp[3] == T(1e30));
  CHECK(sp[4] == T(0));
}

// The rest of xsimd's maths that the kernels call (sin, cos, pow, log, sqrt) at the same extremes:
// under UBSan (the sanitizer build) an undefined conversion inside it would fail this test, and
// the values must be the IEEE ones, NaN kept.
TEST_CASE_TEMPLATE("sin, cos, pow, log and sqrt at NaN, +-inf and +-1e30: no undefined behaviour",
                   T, float, double) {
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  const Tensor<T> x(Shape{1, 9}, {nan, inf, -inf, T(1e30), T(-1e30), T(0), T(1), nan, T(-1e30)});
  for (const Unary f : {Unary::sin, Unary::cos}) {
    CAPTURE(to_string(f));
    const Tensor<T> y = unary(f, x);
    CHECK(std::isnan(y[0]));
    CHECK(std::isnan(y[1]));  // sin and cos of infinity are NaN
    CHECK(std::isnan(y[2]));
    for (int i : {3, 4, 8}) CHECK((std::isnan(y[i]) || std::abs(y[i]) <= T(1)));
    CHECK(y[6] == doctest::Approx(f == Unary::sin ? std::sin(1.0) : std::cos(1.0)));
    CHECK(std::isnan(y[7]));
  }
  for (const T p : {T(2), T(0.5), T(3), T(-1), T(1.7), T(-1.7), T(1e20), T(-1e20)}) {
    CAPTURE(p);
    Tensor<T> y;
    unary(Unary::pow, x, y, p);
    CHECK(std::isnan(y[0]));
    CHECK(std::isnan(y[7]));
    CHECK(y[6] == doctest::Approx(1.0));
    CHECK(y[1] == (p > 0 ? inf : T(0)));  // +inf^p
    CHECK(y[5] == (p > 0 ? T(0) : inf));  // 0^p
  }
  // Exponents that no exact rule takes, where xsimd's own pow cast them to an int64 (|p| past 2^63)
  // or gave 0^-1.7 = 0: the values std::pow gives.
  const Tensor<T> bases(Shape{1, 5}, {T(2), T(0.5), T(1), T(-2), T(0)});
  Tensor<T> y;
  unary(Unary::pow, bases, y, T(1e20));  // an even integer
  CHECK(y[0] == inf);
  CHECK(y[1] == T(0));
  CHECK(y[2] == T(1));
  CHECK(y[3] == inf);
  CHECK(y[4] == T(0));
  unary(Unary::pow, bases, y, T(-3));  // a negative base has an integer power, signed
  CHECK(y[3] == doctest::Approx(-0.125));
  CHECK(y[4] == inf);
  unary(Unary::pow, bases, y, T(-1.7));
  CHECK(y[0] == doctest::Approx(std::pow(2.0, -1.7)));
  CHECK(y[1] == doctest::Approx(std::pow(0.5, -1.7)));
  CHECK(std::isnan(y[3]));
  CHECK(y[4] == inf);
  const Tensor<T> l = unary(Unary::log, x);
  CHECK(std::isnan(l[0]));
  CHECK(l[1] == inf);
  CHECK(std::isnan(l[2]));
  CHECK(l[5] == -inf);
  const Tensor<T> r = unary(Unary::sqrt, x);
  CHECK(r[1] == inf);
  CHECK(std::isnan(r[2]));
  CHECK(r[3] == doctest::Approx(std::sqrt(1e30)));
}
