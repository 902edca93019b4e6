// The tape's contract: errors that name the op, no-grad mode, reset, parameters.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "flowgrad/autodiff/op_author.hpp"
#include "flowgrad/autodiff/ops.hpp"
#include "flowgrad/autodiff/optim.hpp"
#include "flowgrad/tensor/random.hpp"

using namespace flowgrad;
using V = Var<float>;

TEST_CASE("a Var from another tape is refused") {
  Tape<float> t1, t2;
  const V a = t1.constant(TensorF(Shape{2, 2}, 1.f));
  const V b = t2.constant(TensorF(Shape{2, 2}, 1.f));
  CHECK_THROWS_WITH_AS(add(a, b), doctest::Contains("add: Var belongs to another tape"),
                       std::logic_error);
}

TEST_CASE("a Var from before reset() is refused") {
  Tape<float> t;
  const V a = t.constant(TensorF(Shape{2, 2}, 1.f));
  t.reset();
  const V b = t.constant(TensorF(Shape{2, 2}, 1.f));
  CHECK_THROWS_WITH_AS(mul(a, b),
                       doctest::Contains("mul: Var is from before the tape's last reset()"),
                       std::logic_error);
  CHECK_THROWS_AS(a.value(), std::logic_error);
}

TEST_CASE("shape mismatches name the op and the shapes") {
  Tape<float> t;
  const V a = t.constant(TensorF(Shape{3, 4}));
  const V b = t.constant(TensorF(Shape{2, 4}));
  CHECK_THROWS_WITH_AS(add(a, b),
                       doctest::Contains("add: cannot broadcast shapes [3, 4] and [2, 4]"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(matmul(a, b), doctest::Contains("matmul"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(cat({a, b}), doctest::Contains("cat"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(split(a, {1, 2}), doctest::Contains("split: widths add up to 3"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(narrow(a, 3, 2), doctest::Contains("narrow"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(logsumexp(a, 2), doctest::Contains("logsumexp"), std::invalid_argument);
}

TEST_CASE("backward needs something that requires grad") {
  Tape<float> t;
  const V a = t.constant(TensorF(Shape{1, 1}, 2.f));
  CHECK_THROWS_AS(t.backward(square(a)), std::logic_error);
}

TEST_CASE("no-grad mode records values only and allocates no gradient") {
  Tape<float> t;
  Parameter<float> p(TensorF(Shape{2, 2}, 0.5f));
  V y;
  {
    NoGradGuard<float> guard(t);
    y = sum(exp(t.parameter(p)));
    CHECK_FALSE(y.requires_grad());
  }
  CHECK(t.grad_enabled());
  CHECK(y.item() == doctest::Approx(4 * std::exp(0.5f)));
  CHECK_THROWS_AS(t.backward(y), std::logic_error);
  for (std::int32_t i = 0; i < t.size(); ++i) CHECK(OpTape<float>(t).node(i).grad.capacity() == 0);
}

TEST_CASE("parameters accumulate gradients across backward passes until zero_grad") {
  Parameter<float> p(TensorF(Shape{1, 2}, {1.f, 2.f}));
  p.zero_grad();
  Tape<float> t;
  for (int pass = 0; pass < 2; ++pass) {
    t.reset();
    t.backward(sum(square(t.parameter(p))));  // d/dp = 2p
  }
  CHECK(p.grad[0] == doctest::Approx(4.f));
  CHECK(p.grad[1] == doctest::Approx(8.f));
  p.zero_grad();
  CHECK(p.grad[1] == 0.f);
}

TEST_CASE("clear_grad: backward writes the whole gradient, as after zero_grad") {
  // Every way a parameter's gradient is written: the fused MLP's weight and bias sums (by block,
  // and as one product over the batch for the wide layer), linear()'s weight product, an
  // elementwise rule's accumulate; and a parameter recorded but not reached.
  Generator gen(3);
  const auto param = [&](Shape s) { return Parameter<float>(gen.normal<float>(s)); };
  std::vector<Parameter<float>> ps;
  for (const Shape& s : {Shape{160, 5}, Shape{160}, Shape{160, 160}, Shape{160}, Shape{4, 160},
                         Shape{4}, Shape{3, 4}, Shape{3}, Shape{1, 3}, Shape{2, 2}})
    ps.push_back(param(s));
  const TensorF x = gen.normal<float>(Shape{300, 5});
  auto gradients = [&](bool clear, int passes) {
    for (auto& p : ps) {
      p.grad.resize(p.value.shape());
      p.grad.fill(1e30f);  // what a cleared gradient still holds must not show through
      if (clear)
        p.clear_grad();
      else
        p.zero_grad();
    }
    if (clear) CHECK_FALSE(ps[0].has_grad());
    Tape<float> t;
    for (int pass = 0; pass < passes; ++pass) {
      t.reset();
      std::vector<V> w;
      for (int i = 0; i < 6; ++i) w.push_back(t.parameter(ps[static_cast<std::size_t>(i)]));
      V h = mlp(t.constant(x), std::span<const V>(w), Activation::tanh, Activation::none);
      h = linear(h, t.parameter(ps[6]), t.parameter(ps[7]), Activation::relu);
      V loss = sum(square(h * t.parameter(ps[8])));
      (void)t.parameter(ps[9]);
      t.backward(loss);
    }
    std::vector<TensorF> out;
    for (auto& p : ps) out.push_back(p.grad);
    return out;
  };
  for (int passes : {1, 2}) {
    const auto zeroed = gradients(false, passes), cleared = gradients(true, passes);
    for (std::size_t k = 0; k < ps.size(); ++k) {
      INFO("parameter " << k << ", " << passes << " passes");
      REQUIRE(cleared[k].shape() == ps[k].value.shape());
      for (Index i = 0; i < cleared[k].numel(); ++i) REQUIRE(cleared[k][i] == zeroed[k][i]);
    }
  }
  CHECK(gradients(true, 1)[9][0] == 0.f);
  ps[0].clear_grad();
  Adam<float> adam({&ps[0]});
  CHECK_THROWS_WITH_AS(adam.step(), doctest::Contains("until the next backward()"),
                       std::logic_error);
}

TEST_CASE("gradients reach only what requires them") {
  Tape<float> t;
  const V a = t.constant(TensorF(Shape{1, 2}, 1.f), true);
  const V b = t.constant(TensorF(Shape{1, 2}, 3.f));
  t.backward(sum(a * b));
  CHECK(a.grad()[0] == doctest::Approx(3.f));
  CHECK_THROWS_AS(b.grad(), std::logic_error);
}

TEST_CASE("a node keeps its address while later nodes are pushed, across chunks and resets") {
  Tape<float> t;
  for (int pass = 0; pass < 2; ++pass) {
    t.reset();
    const V x = t.constant(TensorF(Shape{1, 3}, {1.f, 2.f, 3.f}), true);
    const TensorF* first = &x.value();
    const float* first_data = first->data();
    V y = x;
    // Far more nodes than one chunk holds, so the tape has to add chunks meanwhile.
    for (int i = 0; i < 2000; ++i) y = y * 1.0f;
    CHECK(&x.value() == first);
    CHECK(x.value().data() == first_data);
    CHECK(x.value()[2] == 3.f);
    t.backward(sum(y));
    CHECK(x.grad()[1] == doctest::Approx(1.f));
  }
}

TEST_CASE("ops keep their own copy of index lists: the caller's vector may die before backward") {
  Tape<double> t;
  const Var<double> x = t.constant(Tensor<double>(Shape{2, 3}, {1, 2, 3, 4, 5, 6}), true);
  const Var<double> s = t.constant(Tensor<double>(Shape{2, 1}, {0.5, -0.5}), true);
  const Var<double> sh = t.constant(Tensor<double>(Shape{2, 1}, {1.0, 2.0}), true);
  Var<double> picked, moved;
  {
    std::vector<Index> idx{2, 0, 2};
    picked = select_columns(x, idx);
    std::vector<Index> cols{1};
    moved = affine_columns(x, s, sh, cols);
    // Overwritten, then destroyed: what the nodes hold must not follow.
    idx.assign({1, 1, 1});
    cols.assign({0});
  }
  t.backward(add(sum(picked), sum(moved)));
  // select_columns: column 0 once, column 2 twice; affine_columns: column 1 scaled by exp(s).
  const double e0 = std::exp(0.5), e1 = std::exp(-0.5);
  const double want[] = {2, e0, 3, 2, e1, 3};
  for (int i = 0; i < 6; ++i) CHECK(x.grad()[i] == doctest::Approx(want[i]));
  // d/ds of x1 * exp(s) + t is x1 * exp(s); d/dt is 1.
  CHECK(s.grad()[0] == doctest::Approx(2 * e0));
  CHECK(s.grad()[1] == doctest::Approx(5 * e1));
  CHECK(sh.grad()[1] == doctest::Approx(1.0));
}
