// Modules, optimizers, clipping, and an MLP fitted end to end.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "flowgrad/autodiff/module.hpp"
#include "flowgrad/autodiff/optim.hpp"
#include "gradcheck_helpers.hpp"

using namespace flowgrad;
using namespace flowgrad::testing;

TEST_CASE("Linear: torch's shapes, names and initialisation bounds") {
  Generator gen(0);
  Linear<float> lin(16, 3, gen);
  CHECK(lin.weight.value.shape() == Shape{3, 16});
  CHECK(lin.bias.value.shape() == Shape{3});
  const float bound = 1.f / 4.f;
  float lo = 1, hi = -1;
  for (Index i = 0; i < lin.weight.value.numel(); ++i) {
    lo = std::min(lo, lin.weight.value[i]);
    hi = std::max(hi, lin.weight.value[i]);
  }
  CHECK(lo >= -bound);
  CHECK(hi <= bound);
  CHECK(hi - lo > bound);  // spread over the interval, not a constant
  const auto named = lin.named_parameters();
  REQUIRE(named.size() == 2);
  CHECK(named[0].name == "weight");
  CHECK(named[1].name == "bias");
}

TEST_CASE("MLP: nn.Sequential names, output activation, wrong input width") {
  Generator gen(0);
  MLP<float> mlp({2, 8, 8, 1}, Activation::relu, gen, Activation::tanh);
  std::vector<std::string> names;
  for (auto& np : mlp.named_parameters()) names.push_back(np.name);
  CHECK(names ==
        std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"});
  CHECK(mlp.parameter_count() == 2 * 8 + 8 + 8 * 8 + 8 + 8 + 1);
  Tape<float> t;
  const auto y = mlp(t.constant(gen.normal<float>(Shape{5, 2}, 0.f, 100.f)));
  for (Index i = 0; i < y.value().numel(); ++i) CHECK(std::abs(y.value()[i]) <= 1.f);
  CHECK_THROWS_WITH_AS(mlp(t.constant(TensorF(Shape{5, 3}))),
                       doctest::Contains("Linear: input [5, 3]"), std::invalid_argument);
}

TEST_CASE("gradcheck: an MLP's loss with respect to every parameter, for each activation") {
  for (Activation act : {Activation::relu, Activation::tanh, Activation::leaky_relu,
                         Activation::softplus, Activation::sigmoid}) {
    CAPTURE(to_string(act));
    Generator gen(3);
    MLP<double> mlp({3, 6, 5, 2}, act, gen, Activation::tanh);
    const auto x = gen.normal<double>(Shape{7, 3});
    const auto target = gen.normal<double>(Shape{7, 2});
    CHECK_GRADCHECK(gradcheck(
        [&](Tape<double>& t) { return mean(square(mlp(t.constant(x)) - t.constant(target))); },
        mlp.parameters()));
  }
}

TEST_CASE("Adam matches the bias-corrected update computed independently in float64") {
  // Loss sum(c * p^2 + p) has gradient 2 c p + 1, so each step's gradient is known in closed form.
  // 11 elements: whole SIMD batches and a tail.
  constexpr int n = 11;
  std::vector<double> c(n), ref(n), m(n), v(n);
  for (int i = 0; i < n; ++i) {
    c[static_cast<std::size_t>(i)] = std::vector<double>{0.5, 2.0, -0.3}[i % 3];
    ref[static_cast<std::size_t>(i)] = std::vector<double>{1.0, -0.5, 2.0}[i % 3] + 0.1 * i;
  }
  Parameter<double> p(Tensor<double>(Shape{1, n}, ref));
  AdamOptions opt;
  opt.lr = 0.05;
  Adam<double> adam({&p}, opt);
  const Tensor<double> cs(Shape{1, n}, c);
  for (int step = 1; step <= 20; ++step) {
    adam.zero_grad();
    Tape<double> t;
    const auto x = t.parameter(p);
    t.backward(sum(t.constant(cs) * square(x) + x));
    adam.step();
    for (std::size_t i = 0; i < n; ++i) {
      const double g = 2 * c[i] * ref[i] + 1;
      m[i] = 0.9 * m[i] + 0.1 * g;
      v[i] = 0.999 * v[i] + 0.001 * g * g;
      const double mhat = m[i] / (1 - std::pow(0.9, step));
      const double vhat = v[i] / (1 - std::pow(0.999, step));
      ref[i] -= 0.05 * mhat / (std::sqrt(vhat) + 1e-8);
    }
    for (int i = 0; i < n; ++i)
      CHECK(p.value[i] == doctest::Approx(ref[static_cast<std::size_t>(i)]).epsilon(1e-12));
  }
  CHECK(adam.steps() == 20);
}

TEST_CASE("Adam in float weighs the moments by 1 - beta rounded once, as torch.optim.Adam") {
  // After one step m = (1 - b1) g and v = (1 - b2) g^2 with the coefficients rounded from double;
  // float(1) - float(0.999) is 1.3e-5 off, which the tolerance below would catch.
  Parameter<float> p(TensorF(Shape{1, 3}, {0.5f, -1.f, 2.f}));
  Adam<float> adam({&p});
  adam.zero_grad();
  p.grad = TensorF(Shape{1, 3}, {3.f, -0.25f, 1e-3f});
  adam.step();
  const AdamState<float> st = adam.state();
  const float a1 = static_cast<float>(1 - 0.9), a2 = static_cast<float>(1 - 0.999);
  for (Index i = 0; i < 3; ++i) {
    const float g = p.grad[i];
    CHECK(st.exp_avg[0][i] == doctest::Approx(a1 * g).epsilon(2e-7));
    CHECK(st.exp_avg_sq[0][i] == doctest::Approx(a2 * (g * g)).epsilon(2e-7));
  }
}

TEST_CASE("SGD with momentum follows v = mu v + g, p -= lr v") {
  Parameter<double> p(Tensor<double>(Shape{1}, {1.0}));
  SGD<double> sgd({&p}, 0.1, 0.9);
  double ref = 1.0, vel = 0;
  for (int step = 0; step < 5; ++step) {
    sgd.zero_grad();
    Tape<double> t;
    t.backward(sum(square(t.parameter(p))));
    sgd.step();
    vel = 0.9 * vel + 2 * ref;
    ref -= 0.1 * vel;
    CHECK(p.value[0] == doctest::Approx(ref).epsilon(1e-14));
  }
}

TEST_CASE("clip_grad_norm scales to the global norm and reports the norm before") {
  Parameter<float> a(TensorF(Shape{1, 2}));
  Parameter<float> b(TensorF(Shape{1, 1}));
  a.grad = TensorF(Shape{1, 2}, {3.f, 0.f});
  b.grad = TensorF(Shape{1, 1}, {4.f});
  const float norm = clip_grad_norm<float>({&a, &b}, 1.f);
  CHECK(norm == doctest::Approx(5.f));
  CHECK(a.grad[0] == doctest::Approx(0.6f).epsilon(1e-5));
  CHECK(b.grad[0] == doctest::Approx(0.8f).epsilon(1e-5));
  // Below the limit nothing changes.
  CHECK(clip_grad_norm<float>({&a, &b}, 10.f) == doctest::Approx(1.f).epsilon(1e-5));
  CHECK(b.grad[0] == doctest::Approx(0.8f).epsilon(1e-5));
}

TEST_CASE("end to end: a 2-layer MLP fits sin(x) with Adam") {
  Generator gen(0);
  const Index n = 256;
  TensorF x(Shape{n, 1}), y(Shape{n, 1});
  for (Index i = 0; i < n; ++i) {
    x[i] = -3.f + 6.f * static_cast<float>(i) / static_cast<float>(n - 1);
    y[i] = std::sin(x[i]);
  }
  MLP<float> mlp({1, 32, 1}, Activation::tanh, gen);
  AdamOptions opt;
  opt.lr = 1e-2;
  Adam<float> adam(mlp.parameters(), opt);
  Tape<float> t;
  float first = 0, last = 0;
  for (int step = 0; step < 1500; ++step) {
    t.reset();
    adam.zero_grad();
    const auto loss = mean(square(mlp(t.constant(x)) - t.constant(y)));
    t.backward(loss);
    adam.step();
    (step == 0 ? first : last) = loss.item();
  }
  INFO("first loss " << first << ", last " << last);
  // Measured: ~0.45 at the start and ~2e-4 after 1500 steps; the bound leaves a 10x margin.
  CHECK(first > 0.1f);
  CHECK(last < 2e-3f);
}
