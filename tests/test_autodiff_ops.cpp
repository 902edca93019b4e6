// gradcheck of every op in float64, with broadcasting, transposes and both sides of every kink.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "flowgrad/autodiff/op_author.hpp"
#include "flowgrad/tensor/ops.hpp"
#include "gradcheck_helpers.hpp"

using namespace flowgrad;
using namespace flowgrad::testing;
using V = Var<double>;
using Args = std::span<const V>;

namespace {

GradcheckResult check_unary(V (*f)(const V&), const Tensor<double>& x) {
  return gradcheck([f](Tape<double>&, Args v) { return weighted_sum(f(v[0])); }, {x});
}

const std::vector<Shape> odd_shapes = {Shape{1, 1}, Shape{3, 5}, Shape{7, 2}, Shape{1, 9},
                                       Shape{10, 1}};

}  // namespace

TEST_CASE("gradcheck: smooth unary ops on any input") {
  Generator gen(1);
  for (const Shape& s : odd_shapes) {
    CAPTURE(s.str());
    const auto x = gen.normal<double>(s, 0.0, 1.5);
    CHECK_GRADCHECK(check_unary(&neg<double>, x));
    CHECK_GRADCHECK(check_unary(&exp<double>, x));
    CHECK_GRADCHECK(check_unary(&tanh<double>, x));
    CHECK_GRADCHECK(check_unary(&sigmoid<double>, x));
    CHECK_GRADCHECK(check_unary(&softplus<double>, x));
    CHECK_GRADCHECK(check_unary(&square<double>, x));
    CHECK_GRADCHECK(check_unary(&sin<double>, x));
    CHECK_GRADCHECK(check_unary(&cos<double>, x));
  }
}

TEST_CASE("gradcheck: saturated tanh, sigmoid and softplus") {
  // +-3 are where the derivatives are still well above gradcheck's atol (tanh'(3) = 1e-2).
  const Tensor<double> x(Shape{1, 8}, {-30.0, -12.0, -6.0, -3.0, 3.0, 6.0, 12.0, 30.0});
  CHECK_GRADCHECK(check_unary(&tanh<double>, x));
  CHECK_GRADCHECK(check_unary(&sigmoid<double>, x));
  CHECK_GRADCHECK(check_unary(&softplus<double>, x));
}

TEST_CASE("tanh, sigmoid and softplus derivatives in saturation against closed forms") {
  // Past |x| = 5 the derivatives are below gradcheck's atol (tanh'(6) = 2.5e-5, tanh'(12) =
  // 1.5e-10), so a wrong sign or a lost factor there passes it. Here the tape's derivative is held
  // to closed forms that stay accurate in saturation. The tape takes tanh' as 1 - y^2 and sigmoid'
  // as y (1 - y) from the rounded output y, which near 1 is known only to an ulp: an absolute
  // error of a few eps (observed 5e-17 at x = 12, and tanh'(30) = 3.5e-26 comes out as 0). So
  // |error| <= 4 eps + 1e-12 |exact|: up to |x| = 12 the derivatives are above 1e-10, and a sign
  // error (off by 2 |exact|) or a missing factor fails by orders of magnitude; at 30 only that the
  // derivative is tiny, of the right size, is checked.
  const auto derivative = [](V (*f)(const V&), double at) {
    Tape<double> tape;
    const V xv = tape.constant(Tensor<double>(Shape{1, 1}, {at}), true);
    tape.backward(sum(f(xv)));
    return xv.grad()[0];
  };
  const double eps = std::numeric_limits<double>::epsilon();
  const auto close = [eps](double got, double exact) {
    return std::abs(got - exact) <= 4 * eps + 1e-12 * std::abs(exact);
  };
  for (const double at : {-30.0, -12.0, -8.0, -5.0, -3.0, 3.0, 5.0, 8.0, 12.0, 30.0}) {
    CAPTURE(at);
    const double e = std::exp(-std::abs(at));
    const double tanh_d = 1 / (std::cosh(at) * std::cosh(at));
    const double sigmoid_d = e / ((1 + e) * (1 + e));               // symmetric in x
    const double softplus_d = at >= 0 ? 1 / (1 + e) : e / (1 + e);  // sigmoid(x)
    const double got_tanh = derivative(&tanh<double>, at);
    const double got_sigmoid = derivative(&sigmoid<double>, at);
    const double got_softplus = derivative(&softplus<double>, at);
    INFO("tanh' " << got_tanh << " (exact " << tanh_d << "), sigmoid' " << got_sigmoid << " (exact "
                  << sigmoid_d << "), softplus' " << got_softplus << " (exact " << softplus_d
                  << ")");
    CHECK(close(got_tanh, tanh_d));
    CHECK(close(got_sigmoid, sigmoid_d));
    CHECK(close(got_softplus, softplus_d));
  }
}

TEST_CASE("gradcheck: log, sqrt and pow on positive inputs") {
  Generator gen(2);
  for (const Shape& s : odd_shapes) {
    const auto x = positive(gen, s);
    CHECK_GRADCHECK(check_unary(&log<double>, x));
    CHECK_GRADCHECK(check_unary(&sqrt<double>, x));
    for (double e : {2.0, 3.0, 0.5, -1.0, 1.5, -2.5}) {
      CAPTURE(e);
      CHECK_GRADCHECK(
          gradcheck([e](Tape<double>&, Args v) { return weighted_sum(pow(v[0], e)); }, {x}));
    }
  }
}

TEST_CASE("gradcheck: pow with integer exponents on negative inputs") {
  Generator gen(3);
  const auto x = away_from_zero(gen, Shape{4, 3});
  for (double e : {2.0, 3.0, -1.0}) {
    CAPTURE(e);
    CHECK_GRADCHECK(
        gradcheck([e](Tape<double>&, Args v) { return weighted_sum(pow(v[0], e)); }, {x}));
  }
}

TEST_CASE("leaky_relu refuses a negative slope: its derivative is read from the output") {
  Tape<double> t;
  const V x = t.constant(Tensor<double>(Shape{1, 2}, {-1.0, 1.0}), true);
  CHECK_THROWS_WITH_AS(leaky_relu(x, -0.5), doctest::Contains("leaky_relu: negative slope"),
                       std::invalid_argument);
  CHECK_NOTHROW(leaky_relu(x, 0.0));
}

TEST_CASE("gradcheck: relu, leaky_relu and abs on both sides of the kink") {
  Generator gen(4);
  const auto x = away_from_zero(gen, Shape{6, 7});
  bool saw_negative = false, saw_positive = false;
  for (Index i = 0; i < x.numel(); ++i) (x[i] < 0 ? saw_negative : saw_positive) = true;
  REQUIRE(saw_negative);
  REQUIRE(saw_positive);
  CHECK_GRADCHECK(check_unary(&relu<double>, x));
  CHECK_GRADCHECK(check_unary(&abs<double>, x));
  CHECK_GRADCHECK(
      gradcheck([](Tape<double>&, Args v) { return weighted_sum(leaky_relu(v[0], 0.2)); }, {x}));
}

TEST_CASE("gradcheck: binary ops with every broadcasting shape, on both sides") {
  Generator gen(5);
  const std::vector<std::pair<Shape, Shape>> pairs = {
      {Shape{4, 3}, Shape{4, 3}}, {Shape{4, 3}, Shape{1, 3}}, {Shape{1, 3}, Shape{4, 3}},
      {Shape{4, 3}, Shape{4, 1}}, {Shape{4, 1}, Shape{4, 3}}, {Shape{4, 3}, Shape{1, 1}},
      {Shape{1, 1}, Shape{4, 3}}, {Shape{4, 1}, Shape{1, 3}}, {Shape{1, 3}, Shape{4, 1}},
      {Shape{4, 3}, Shape{3}}};
  for (const auto& [sa, sb] : pairs) {
    CAPTURE(sa.str());
    CAPTURE(sb.str());
    const auto a = gen.normal<double>(sa);
    const auto b = positive(gen, sb, 0.5, 2.0);  // a divisor away from zero
    CHECK_GRADCHECK(
        gradcheck([](Tape<double>&, Args v) { return weighted_sum(v[0] + v[1]); }, {a, b}));
    CHECK_GRADCHECK(
        gradcheck([](Tape<double>&, Args v) { return weighted_sum(v[0] - v[1]); }, {a, b}));
    CHECK_GRADCHECK(
        gradcheck([](Tape<double>&, Args v) { return weighted_sum(v[0] * v[1]); }, {a, b}));
    CHECK_GRADCHECK(
        gradcheck([](Tape<double>&, Args v) { return weighted_sum(v[0] / v[1]); }, {a, b}));
    CHECK_GRADCHECK(gradcheck(
        [](Tape<double>&, Args v) { return weighted_sum(logaddexp(v[0], v[1])); }, {a, b}));
  }
}

TEST_CASE("gradcheck: scalar arithmetic (affine)") {
  Generator gen(6);
  const auto x = gen.normal<double>(Shape{3, 4});
  CHECK_GRADCHECK(
      gradcheck([](Tape<double>&, Args v) { return weighted_sum(2.5 * v[0] - 1.0); }, {x}));
  CHECK_GRADCHECK(
      gradcheck([](Tape<double>&, Args v) { return weighted_sum(3.0 - v[0] / 4.0); }, {x}));
}

TEST_CASE("gradcheck: matmul in all four transpose forms") {
  Generator gen(7);
  const Index m = 5, k = 3, n = 4;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      CAPTURE(ta);
      CAPTURE(tb);
      const auto a = gen.normal<double>(ta ? Shape{k, m} : Shape{m, k});
      const auto b = gen.normal<double>(tb ? Shape{n, k} : Shape{k, n});
      CHECK_GRADCHECK(gradcheck(
          [=](Tape<double>&, Args v) {
            return weighted_sum(matmul(v[0], v[1], {ta, tb, false}));
          },
          {a, b}));
    }
}

TEST_CASE("gradcheck: linear with a rank-1 bias, batch of one and of many") {
  Generator gen(8);
  for (Index batch : {1, 6}) {
    const auto x = gen.normal<double>(Shape{batch, 3});
    const auto w = gen.normal<double>(Shape{2, 3});
    const auto b = gen.normal<double>(Shape{2});
    CHECK_GRADCHECK(gradcheck(
        [](Tape<double>&, Args v) { return weighted_sum(linear(v[0], v[1], v[2])); }, {x, w, b}));
  }
}

TEST_CASE("gradcheck: linear with each fused activation") {
  Generator gen(13);
  for (Activation act : {Activation::none, Activation::relu, Activation::leaky_relu,
                         Activation::tanh, Activation::sigmoid, Activation::softplus}) {
    CAPTURE(static_cast<int>(act));
    const auto x = gen.normal<double>(Shape{6, 3});
    const auto w = gen.normal<double>(Shape{4, 3});
    const auto b = gen.normal<double>(Shape{4});
    CHECK_GRADCHECK(gradcheck(
        [act](Tape<double>&, Args v) { return weighted_sum(linear(v[0], v[1], v[2], act)); },
        {x, w, b}));
  }
}

TEST_CASE("fused linear + activation equals the unfused ops, values and gradients") {
  Generator gen(14);
  for (Index width : {1, 2, 4, 17}) {
    CAPTURE(width);
    const auto x = gen.normal<double>(Shape{33, 5});
    const auto w = gen.normal<double>(Shape{width, 5});
    const auto b = gen.normal<double>(Shape{width});
    const std::pair<Activation, V (*)(const V&)> cases[] = {
        {Activation::relu, [](const V& v) { return relu(v); }},
        {Activation::leaky_relu, [](const V& v) { return leaky_relu(v, 0.01); }},
        {Activation::tanh, [](const V& v) { return tanh(v); }},
        {Activation::sigmoid, [](const V& v) { return sigmoid(v); }},
        {Activation::softplus, [](const V& v) { return softplus(v); }}};
    for (const auto& [act, f] : cases) {
      CAPTURE(static_cast<int>(act));
      Tape<double> t1, t2;
      const V x1 = t1.constant(x, true), w1 = t1.constant(w, true), b1 = t1.constant(b, true);
      const V x2 = t2.constant(x, true), w2 = t2.constant(w, true), b2 = t2.constant(b, true);
      const V fused = linear(x1, w1, b1, act);
      const V plain = f(linear(x2, w2, b2));
      for (Index i = 0; i < fused.value().numel(); ++i)
        CHECK(fused.value()[i] == doctest::Approx(plain.value()[i]).epsilon(1e-12));
      t1.backward(weighted_sum(fused));
      t2.backward(weighted_sum(plain));
      for (auto [a, c] : {std::pair{x1, x2}, std::pair{w1, w2}, std::pair{b1, b2}})
        for (Index i = 0; i < a.grad().numel(); ++i)
          CHECK(a.grad()[i] == doctest::Approx(c.grad()[i]).epsilon(1e-10));
    }
  }
}

TEST_CASE("gradcheck: sum, mean and logsumexp over everything, rows and columns") {
  Generator gen(9);
  const auto x = gen.normal<double>(Shape{5, 4}, 0.0, 3.0);
  CHECK_GRADCHECK(gradcheck([](Tape<double>&, Args v) { return sum(square(v[0])); }, {x}));
  CHECK_GRADCHECK(gradcheck([](Tape<double>&, Args v) { return mean(square(v[0])); }, {x}));
  for (int dim : {0, 1}) {
    CAPTURE(dim);
    CHECK_GRADCHECK(
        gradcheck([dim](Tape<double>&, Args v) { return weighted_sum(sum(v[0], dim)); }, {x}));
    CHECK_GRADCHECK(
        gradcheck([dim](Tape<double>&, Args v) { return weighted_sum(mean(v[0], dim)); }, {x}));
    CHECK_GRADCHECK(gradcheck(
        [dim](Tape<double>&, Args v) { return weighted_sum(logsumexp(v[0], dim)); }, {x}));
  }
}

TEST_CASE("gradcheck: logsumexp and logaddexp with large inputs") {
  const Tensor<double> x(Shape{2, 3}, {500.0, 501.0, 499.0, -400.0, -402.0, -401.0});
  CHECK_GRADCHECK(
      gradcheck([](Tape<double>&, Args v) { return weighted_sum(logsumexp(v[0], 1)); }, {x}));
  const Tensor<double> a(Shape{1, 3}, {700.0, -700.0, 3.0});
  const Tensor<double> b(Shape{1, 3}, {690.0, -650.0, 3.0});
  CHECK_GRADCHECK(
      gradcheck([](Tape<double>&, Args v) { return weighted_sum(logaddexp(v[0], v[1])); }, {a, b}));
}

TEST_CASE("gradcheck: cat, narrow, split, select_columns and mask_columns") {
  Generator gen(10);
  const auto a = gen.normal<double>(Shape{4, 2});
  const auto b = gen.normal<double>(Shape{4, 3});
  const auto c = gen.normal<double>(Shape{4, 1});
  CHECK_GRADCHECK(gradcheck(
      [](Tape<double>&, Args v) {
        return weighted_sum(cat({v[0], v[1], v[2]}));
      },
      {a, b, c}));
  CHECK_GRADCHECK(
      gradcheck([](Tape<double>&, Args v) { return weighted_sum(narrow(v[0], 1, 2)); }, {b}));
  // Split and rejoin in the other order: a permutation of columns.
  CHECK_GRADCHECK(gradcheck(
      [](Tape<double>&, Args v) {
        return weighted_sum(cat({narrow(v[0], 2, 1), narrow(v[0], 0, 2)}));
      },
      {b}));
  CHECK_GRADCHECK(gradcheck(
      [](Tape<double>&, Args v) {
        const auto parts = split(v[0], {1, 2});
        return weighted_sum(cat({parts[1], parts[0]}));
      },
      {b}));
  const std::vector<Index> idx = {2, 0, 2};
  CHECK_GRADCHECK(gradcheck(
      [&](Tape<double>&, Args v) { return weighted_sum(select_columns(v[0], idx)); }, {b}));
  const Tensor<double> mask(Shape{1, 3}, {1.0, 0.0, 1.0});
  CHECK_GRADCHECK(gradcheck(
      [&](Tape<double>&, Args v) { return weighted_sum(mask_columns(v[0], mask)); }, {b}));
}

TEST_CASE("gradcheck: affine_columns, forward and inverse, on several column sets") {
  Generator gen(12);
  const auto x = gen.normal<double>(Shape{5, 4});
  for (const std::vector<Index>& idx :
       {std::vector<Index>{1}, std::vector<Index>{3, 0}, std::vector<Index>{0, 1, 2, 3}})
    for (const bool inverse : {false, true}) {
      CAPTURE(idx.size());
      CAPTURE(inverse);
      const Shape st{5, static_cast<Index>(idx.size())};
      const auto s = gen.normal<double>(st, 0.0, 0.5);
      const auto t = gen.normal<double>(st);
      CHECK_GRADCHECK(gradcheck(
          [&](Tape<double>&, Args v) {
            return weighted_sum(affine_columns(v[0], v[1], v[2], idx, inverse));
          },
          {x, s, t}));
    }
}

TEST_CASE("affine_columns equals the unfused coupling transform, and inverts itself") {
  Generator gen(13);
  const auto x = gen.normal<double>(Shape{37, 5});
  const std::vector<Index> idx = {4, 1};
  const std::vector<Index> kept = {0, 2, 3};
  const auto s = gen.normal<double>(Shape{37, 2});
  const auto t = gen.normal<double>(Shape{37, 2});
  Tape<double> tape;
  const V xv = tape.constant(x), sv = tape.constant(s), tv = tape.constant(t);
  const V fused = affine_columns(xv, sv, tv, idx);
  // The same map from generic ops: transformed columns, then scattered back by a permutation.
  const V y2 = select_columns(xv, idx) * exp(sv) + tv;
  const std::vector<Index> order = {0, 4, 1, 2, 3};  // x's column c is column order[c] of the cat
  const V plain = select_columns(cat({select_columns(xv, kept), y2}), order);
  const V back = affine_columns(fused, sv, tv, idx, true);
  for (Index i = 0; i < x.numel(); ++i) {
    CHECK(fused.value()[i] == doctest::Approx(plain.value()[i]).epsilon(1e-14));
    CHECK(back.value()[i] == doctest::Approx(x[i]).epsilon(1e-12));
  }
  for (Index i = 0; i < 37; ++i)
    for (Index c : kept) CHECK(fused.value()(i, c) == x(i, c));
}

TEST_CASE("affine_columns rejects shapes and columns that do not fit") {
  Tape<double> tape;
  const V x = tape.constant(Tensor<double>(Shape{4, 3}));
  const V s = tape.constant(Tensor<double>(Shape{4, 2}));
  const V t1 = tape.constant(Tensor<double>(Shape{4, 1}));
  const std::vector<Index> two = {0, 2}, outside = {0, 3}, repeat = {1, 1};
  CHECK_THROWS_WITH_AS(affine_columns(x, s, t1, two),
                       doctest::Contains("needs s and t [4, 2], got [4, 2] and [4, 1]"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(affine_columns(x, s, s, outside),
                       doctest::Contains("column 3 is outside [4, 3]"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(affine_columns(x, s, s, repeat), doctest::Contains("column 1 repeats"),
                       std::invalid_argument);
}

TEST_CASE("gradcheck: a composite that reuses a value (gradients accumulate)") {
  Generator gen(11);
  const auto x = gen.normal<double>(Shape{3, 3});
  const auto y = positive(gen, Shape{1, 3});
  CHECK_GRADCHECK(gradcheck(
      [](Tape<double>&, Args v) {
        const V h = tanh(matmul(v[0], v[0])) * v[1] + v[0];
        return mean(log(softplus(h) + 1e-3) * h);
      },
      {x, y}));
}

TEST_CASE("a value used twice gets the sum of both gradients") {
  Tape<double> t;
  const V x = t.constant(Tensor<double>(Shape{1, 2}, {1.5, -2.0}), true);
  const V y = sum(x * x + x);  // dy/dx = 2x + 1
  t.backward(y);
  CHECK(x.grad()[0] == doctest::Approx(4.0));
  CHECK(x.grad()[1] == doctest::Approx(-3.0));
}

TEST_CASE("backward of a non-scalar with an explicit seed") {
  Tape<double> t;
  const V x = t.constant(Tensor<double>(Shape{2, 2}, {1.0, 2.0, 3.0, 4.0}), true);
  const V y = square(x);
  const Tensor<double> seed(Shape{2, 2}, {1.0, 0.0, -1.0, 0.5});
  t.backward(y, seed);
  const double expect[] = {2.0, 0.0, -6.0, 4.0};
  for (int i = 0; i < 4; ++i) CHECK(x.grad()[i] == doctest::Approx(expect[i]));
  CHECK_THROWS_WITH_AS(t.backward(y), doctest::Contains("not a scalar"), std::invalid_argument);
}

// A deliberately wrong backward rule (the sign of sin's derivative flipped): gradcheck must see it.
namespace {
struct WrongSinOp {
  static void backward(OpTape<double>& t, const Node<double>& n) {
    if (auto* gx = t.grad_for(n.in[0])) {
      const Tensor<double>& x = t.value(n.in[0]);
      for (Index i = 0; i < x.numel(); ++i) (*gx)[i] -= n.grad[i] * std::cos(x[i]);
    }
  }
};
V wrong_sin(const V& x) {
  V out;
  Node<double>& n = OpTape<double>(x.tape()).push("wrong_sin", &WrongSinOp::backward, {x}, &out);
  n.value = unary(Unary::sin, x.value());
  return out;
}
// A rule that forgets a term: d(x * x) taken as x instead of 2x.
struct HalfSquareOp {
  static void backward(OpTape<double>& t, const Node<double>& n) {
    if (auto* gx = t.grad_for(n.in[0]))
      for (Index i = 0; i < n.grad.numel(); ++i) (*gx)[i] += n.grad[i] * t.value(n.in[0])[i];
  }
};
V half_square(const V& x) {
  V out;
  Node<double>& n =
      OpTape<double>(x.tape()).push("half_square", &HalfSquareOp::backward, {x}, &out);
  n.value = unary(Unary::square, x.value());
  return out;
}
}  // namespace

TEST_CASE("gradcheck catches a wrong sign and a missing term, and names the element") {
  Generator gen(12);
  const auto x = gen.normal<double>(Shape{2, 3});
  const auto r =
      gradcheck([](Tape<double>&, Args v) { return weighted_sum(wrong_sin(v[0])); }, {x});
  CHECK_FALSE(r.ok);
  CHECK(r.input == 0);
  CHECK(r.index >= 0);
  CHECK(r.message.find("FAILED") != std::string::npos);
  CHECK(r.message.find("analytic") != std::string::npos);
  const auto r2 =
      gradcheck([](Tape<double>&, Args v) { return weighted_sum(half_square(v[0])); }, {x});
  CHECK_FALSE(r2.ok);
  // The correct op passes on the same input, so the failures above are the rules' fault.
  CHECK(check_unary(&sin<double>, x).ok);
}
