// The fused MLP node: gradients against finite differences, and values and gradients against the
// chain of linear() nodes it replaces, for batches of one block and of several with a short tail.
#include <doctest/doctest.h>

#include <array>
#include <utility>
#include <vector>

#include "flowgrad/autodiff/detail/mlp_forward.hpp"
#include "flowgrad/autodiff/module.hpp"
#include "flowgrad/tensor/threads.hpp"
#include "gradcheck_helpers.hpp"

using namespace flowgrad;
using namespace flowgrad::testing;
using V = Var<double>;
using Args = std::span<const V>;

namespace {

const Activation kActivations[] = {Activation::none, Activation::relu,    Activation::leaky_relu,
                                   Activation::tanh, Activation::sigmoid, Activation::softplus};

// {weight 0, bias 0, weight 1, ...} for the layer widths sizes[0] -> sizes[1] -> ...
std::vector<Tensor<double>> random_layers(Generator& gen, const std::vector<Index>& sizes) {
  std::vector<Tensor<double>> p;
  for (std::size_t l = 0; l + 1 < sizes.size(); ++l) {
    p.push_back(gen.normal<double>(Shape{sizes[l + 1], sizes[l]}, 0.0, 0.7));
    p.push_back(gen.normal<double>(Shape{sizes[l + 1]}, 0.0, 0.5));
  }
  return p;
}

V chain(const V& x, Args p, Activation hidden, Activation output) {
  V h = x;
  for (std::size_t l = 0; 2 * l < p.size(); ++l)
    h = linear(h, p[2 * l], p[2 * l + 1], 2 * l + 2 < p.size() ? hidden : output);
  return h;
}

}  // namespace

TEST_CASE("gradcheck: mlp with 1 to 3 layers and each activation") {
  Generator gen(21);
  // Also nets fed one column, as a 2-D flow's coupling networks are, with first layers of whole
  // SIMD batches and a tail ({1, 6, 3}), a tail only ({1, 3}), rows narrower than a batch
  // ({1, 2, 1}).
  const std::vector<std::vector<Index>> nets = {{3, 2},    {2, 5, 1}, {3, 6, 5, 2},
                                                {1, 6, 3}, {1, 3},    {1, 2, 1}};
  for (const auto& sizes : nets)
    for (Activation hidden : kActivations)
      for (Activation output : {Activation::none, Activation::tanh}) {
        CAPTURE(sizes.size());
        CAPTURE(static_cast<int>(hidden));
        CAPTURE(static_cast<int>(output));
        std::vector<Tensor<double>> inputs = random_layers(gen, sizes);
        inputs.insert(inputs.begin(), gen.normal<double>(Shape{7, sizes[0]}));
        CHECK_GRADCHECK(
            gradcheck([=](Tape<double>&,
                          Args v) { return weighted_sum(mlp(v[0], v.subspan(1), hidden, output)); },
                      inputs));
      }
}

TEST_CASE("gradcheck: mlp over several row blocks with a short last one") {
  Generator gen(22);
  std::vector<Tensor<double>> inputs = random_layers(gen, {2, 5, 4, 1});
  inputs.insert(inputs.begin(), gen.normal<double>(Shape{300, 2}));
  CHECK_GRADCHECK(gradcheck(
      [](Tape<double>&, Args v) {
        return weighted_sum(mlp(v[0], v.subspan(1), Activation::tanh, Activation::tanh));
      },
      inputs));
}

TEST_CASE("gradcheck: mlp layer by layer, over the whole batch") {
  Generator gen(27);
  // 3 rows: part of a transpose square; 17: two whole ones and a tail, with a tail of columns too.
  const std::vector<std::pair<std::vector<Index>, Index>> cases = {{{6, 12, 9, 4}, 3},
                                                                   {{24, 64, 48, 5}, 17}};
  for (const auto& [sizes, rows] : cases) {
    REQUIRE(detail::mlp_forward_by_layer(sizes, rows));
    for (Activation hidden : kActivations) {
      if (rows > 3 && hidden == Activation::relu) continue;  // one kink among many is enough
      CAPTURE(sizes.size());
      CAPTURE(static_cast<int>(hidden));
      std::vector<Tensor<double>> inputs = random_layers(gen, sizes);
      inputs.insert(inputs.begin(), gen.normal<double>(Shape{rows, sizes[0]}));
      CHECK_GRADCHECK(gradcheck(
          [=](Tape<double>&, Args v) {
            return weighted_sum(mlp(v[0], v.subspan(1), hidden, Activation::tanh));
          },
          inputs));
    }
  }
}

namespace {

// mlp() and the chain of linear() nodes on the same input and layers: values, then the gradient
// of x (if wanted) and of every parameter.
void check_against_chain(Generator& gen, const std::vector<Index>& sizes, Index batch,
                         Activation hidden, Activation output, bool x_grad) {
  CAPTURE(sizes.size());
  CAPTURE(sizes[1]);
  CAPTURE(batch);
  CAPTURE(static_cast<int>(hidden));
  CAPTURE(static_cast<int>(output));
  CAPTURE(x_grad);
  const std::vector<Tensor<double>> layers = random_layers(gen, sizes);
  const Tensor<double> x = gen.normal<double>(Shape{batch, sizes[0]});
  Tape<double> t1, t2;
  std::vector<V> p1, p2;
  for (const auto& p : layers) {
    p1.push_back(t1.constant(p, true));
    p2.push_back(t2.constant(p, true));
  }
  const V x1 = t1.constant(x, x_grad), x2 = t2.constant(x, x_grad);
  const V fused = mlp(x1, Args(p1), hidden, output);
  const V plain = chain(x2, Args(p2), hidden, output);
  REQUIRE(fused.shape() == plain.shape());
  for (Index i = 0; i < fused.value().numel(); ++i)
    CHECK(fused.value()[i] == doctest::Approx(plain.value()[i]).epsilon(1e-12));
  t1.backward(weighted_sum(fused));
  t2.backward(weighted_sum(plain));
  if (x_grad)
    for (Index i = 0; i < x1.grad().numel(); ++i)
      CHECK(x1.grad()[i] == doctest::Approx(x2.grad()[i]).epsilon(1e-10));
  for (std::size_t k = 0; k < p1.size(); ++k)
    for (Index i = 0; i < p1[k].grad().numel(); ++i)
      CHECK(p1[k].grad()[i] == doctest::Approx(p2[k].grad()[i]).epsilon(1e-10));
}

}  // namespace

TEST_CASE("mlp equals the chain of linear nodes, values and every gradient") {
  Generator gen(23);
  // Batches of 1 to 8 row blocks (600: 5, 850: 7). {3, 96, 96, 2} at batch 1100 sums its middle
  // layer's weight gradient over the whole batch rather than per block of rows (too many
  // partials); at 130, per block.
  const std::vector<std::vector<Index>> nets = {{2, 64, 64, 1}, {1, 64, 64, 1}, {1, 17, 17, 2},
                                                {4, 9, 3},      {5, 2},         {3, 96, 96, 2}};
  for (const auto& sizes : nets)
    for (Index batch : {1, 7, 130, 600, 850, 1100})
      for (Activation hidden : {Activation::relu, Activation::tanh, Activation::softplus})
        for (const bool x_grad : {true, false})
          check_against_chain(gen, sizes, batch, hidden, Activation::tanh, x_grad);
}

TEST_CASE("mlp's forward pass goes layer by layer where the weights outweigh the activations") {
  using detail::mlp_forward_by_layer;
  const std::vector<Index> wide = {392, 1024, 1024, 392};  // a 784-pixel coupling's net
  CHECK(mlp_forward_by_layer(wide, 256));
  CHECK(mlp_forward_by_layer(wide, 379));
  CHECK_FALSE(mlp_forward_by_layer(wide, 380));
  CHECK_FALSE(mlp_forward_by_layer(wide, 1024));
  const std::vector<Index> narrow = {1, 256, 256, 2};  // a 2-D coupling's
  CHECK_FALSE(mlp_forward_by_layer(narrow, 1024));
  CHECK(mlp_forward_by_layer(narrow, 16));
  CHECK(mlp_forward_by_layer(narrow, 4));
  CHECK_FALSE(mlp_forward_by_layer(narrow, 5));  // part of a register tile
  CHECK_FALSE(mlp_forward_by_layer(wide, 15));
}

TEST_CASE("mlp layer by layer equals the chain of linear nodes, values and every gradient") {
  Generator gen(26);
  // Batches of a part of a transpose square (1, 3), whole ones with a tail (17, 19) and whole ones
  // only (24); widths of whole squares (96) and with a tail (30, 90, 6); three layers and two.
  const std::vector<std::vector<Index>> nets = {{40, 96, 96, 30}, {70, 90, 6}};
  for (const auto& sizes : nets)
    for (Index batch : {1, 3, 17, 19, 24}) {
      REQUIRE(detail::mlp_forward_by_layer(sizes, batch));
      for (Activation hidden : {Activation::relu, Activation::leaky_relu, Activation::softplus})
        for (Activation output : {Activation::none, Activation::tanh})
          for (const bool x_grad : {true, false})
            check_against_chain(gen, sizes, batch, hidden, output, x_grad);
    }
}

TEST_CASE("mlp with some parameters frozen, and parameters shared by two calls") {
  // Gradients are added to what a parameter already holds, and only where one is wanted.
  Generator gen(25);
  for (const Index in : {2, 1})
    for (int frozen = 0; frozen < 6; ++frozen) {
      CAPTURE(in);
      CAPTURE(frozen);
      const std::vector<Index> sizes = {in, 24, 16, 1};
      const std::vector<Tensor<double>> layers = random_layers(gen, sizes);
      const Tensor<double> xa = gen.normal<double>(Shape{700, in});
      const Tensor<double> xb = gen.normal<double>(Shape{300, in});
      Tape<double> t1, t2;
      std::vector<V> p1, p2;
      for (std::size_t k = 0; k < layers.size(); ++k) {
        p1.push_back(t1.constant(layers[k], static_cast<int>(k) != frozen));
        p2.push_back(t2.constant(layers[k], static_cast<int>(k) != frozen));
      }
      const V fused = sum(mlp(t1.constant(xa), Args(p1), Activation::relu, Activation::none)) +
                      sum(mlp(t1.constant(xb), Args(p1), Activation::relu, Activation::none));
      const V plain = sum(chain(t2.constant(xa), Args(p2), Activation::relu, Activation::none)) +
                      sum(chain(t2.constant(xb), Args(p2), Activation::relu, Activation::none));
      t1.backward(fused);
      t2.backward(plain);
      for (std::size_t k = 0; k < p1.size(); ++k) {
        CAPTURE(k);
        REQUIRE(p1[k].requires_grad() == (static_cast<int>(k) != frozen));
        if (!p1[k].requires_grad()) continue;
        for (Index i = 0; i < p1[k].grad().numel(); ++i)
          CHECK(p1[k].grad()[i] == doctest::Approx(p2[k].grad()[i]).epsilon(1e-10));
      }
    }
}

TEST_CASE("mlp's wide weight gradient in blocks of rows, stored and added to what it holds") {
  // 300 -> 500 in double: more rows than half of any L2 up to 2 MB takes at once, so the gradient
  // goes a block of rows at a time (at one thread); the input, packed, fits any L2 of 512 KB or
  // more. Two calls: the second adds its gradient to the first's.
  Generator gen(29);
  set_num_threads(1);
  const std::vector<Index> sizes = {20, 300, 500, 3};
  const std::vector<Tensor<double>> layers = random_layers(gen, sizes);
  const Tensor<double> xa = gen.normal<double>(Shape{100, 20});
  const Tensor<double> xb = gen.normal<double>(Shape{60, 20});
  for (const bool twice : {false, true}) {
    CAPTURE(twice);
    Tape<double> t1, t2;
    std::vector<V> p1, p2;
    for (const auto& l : layers) {
      p1.push_back(t1.constant(l, true));
      p2.push_back(t2.constant(l, true));
    }
    V fused = weighted_sum(mlp(t1.constant(xa), Args(p1), Activation::tanh, Activation::none));
    V plain = weighted_sum(chain(t2.constant(xa), Args(p2), Activation::tanh, Activation::none));
    if (twice) {
      fused =
          fused + weighted_sum(mlp(t1.constant(xb), Args(p1), Activation::tanh, Activation::none));
      plain = plain +
              weighted_sum(chain(t2.constant(xb), Args(p2), Activation::tanh, Activation::none));
    }
    t1.backward(fused);
    t2.backward(plain);
    for (std::size_t k = 0; k < p1.size(); ++k) {
      CAPTURE(k);
      for (Index i = 0; i < p1[k].grad().numel(); ++i)
        CHECK(p1[k].grad()[i] == doctest::Approx(p2[k].grad()[i]).epsilon(1e-10));
    }
  }
}

TEST_CASE("mlp without gradients computes the same values from its scratch blocks") {
  Generator gen(24);
  // Blocks of rows through every layer, and three layers over the whole batch in turn.
  const std::vector<std::pair<std::vector<Index>, Index>> cases = {{{2, 33, 33, 2}, 1000},
                                                                   {{30, 64, 64, 5}, 19}};
  for (const auto& [sizes, rows] : cases) {
    CHECK(detail::mlp_forward_by_layer(sizes, rows) == (rows == 19));
    const std::vector<Tensor<double>> layers = random_layers(gen, sizes);
    const Tensor<double> x = gen.normal<double>(Shape{rows, sizes[0]});
    Tape<double> t;
    std::vector<V> p;
    for (const auto& l : layers) p.push_back(t.constant(l, true));
    const V with_grad = mlp(t.constant(x), Args(p), Activation::relu, Activation::none);
    Tensor<double> without;
    {
      NoGradGuard<double> guard(t);
      const V y = mlp(t.constant(x), Args(p), Activation::relu, Activation::none);
      CHECK_FALSE(y.requires_grad());
      without = y.value();
    }
    REQUIRE(without.numel() == with_grad.value().numel());
    for (Index i = 0; i < without.numel(); ++i) CHECK(without[i] == with_grad.value()[i]);
  }
}

TEST_CASE("mlp on an empty batch: an empty output and zero gradients") {
  Generator gen(28);
  // Blocks of rows would be taken for a net whose weights are no more than its activations; an
  // empty batch has none, so both nets go layer by layer forward, and back through one empty block.
  for (const auto& sizes : {std::vector<Index>{2, 5, 1}, std::vector<Index>{20, 300, 2}}) {
    CAPTURE(sizes[1]);
    const std::vector<Tensor<double>> layers = random_layers(gen, sizes);
    Tape<double> t;
    std::vector<V> p;
    for (const auto& l : layers) p.push_back(t.constant(l, true));
    const V x = t.constant(Tensor<double>(Shape{0, sizes[0]}), true);
    const V y = mlp(x, Args(p), Activation::tanh, Activation::none);
    CHECK(y.shape() == Shape{0, sizes.back()});
    t.backward(sum(y));
    CHECK(x.grad().shape() == Shape{0, sizes[0]});
    for (std::size_t k = 0; k < p.size(); ++k) {
      CAPTURE(k);
      REQUIRE(p[k].grad().shape() == p[k].shape());
      for (Index i = 0; i < p[k].grad().numel(); ++i) CHECK(p[k].grad()[i] == 0.0);
    }
  }
}

TEST_CASE("mlp rejects layers that do not fit together, naming the layer") {
  Generator gen(25);
  Tape<double> t;
  const V x = t.constant(gen.normal<double>(Shape{4, 3}));
  auto c = [&](Shape s) { return t.constant(Tensor<double>(s)); };
  const std::array<V, 4> wrong_width = {c(Shape{5, 3}), c(Shape{5}), c(Shape{2, 4}), c(Shape{2})};
  CHECK_THROWS_WITH_AS(mlp(x, Args(wrong_width), Activation::relu, Activation::none),
                       doctest::Contains("mlp: layer 1's weight [2, 4] does not take 5 inputs"),
                       std::invalid_argument);
  const std::array<V, 2> wrong_input = {c(Shape{5, 2}), c(Shape{5})};
  CHECK_THROWS_WITH_AS(mlp(x, Args(wrong_input), Activation::relu, Activation::none),
                       doctest::Contains("input [4, 3]"), std::invalid_argument);
  const std::array<V, 2> wrong_bias = {c(Shape{5, 3}), c(Shape{4})};
  CHECK_THROWS_WITH_AS(mlp(x, Args(wrong_bias), Activation::relu, Activation::none),
                       doctest::Contains("layer 0's bias [4]"), std::invalid_argument);
  const std::array<V, 3> odd = {c(Shape{5, 3}), c(Shape{5}), c(Shape{2, 5})};
  CHECK_THROWS_WITH_AS(mlp(x, Args(odd), Activation::relu, Activation::none),
                       doctest::Contains("a weight and a bias"), std::invalid_argument);
  std::vector<V> four_layers;
  for (int l = 0; l < 4; ++l) {
    four_layers.push_back(c(Shape{3, 3}));
    four_layers.push_back(c(Shape{3}));
  }
  CHECK_THROWS_AS(mlp(x, Args(four_layers), Activation::relu, Activation::none),
                  std::invalid_argument);
}

TEST_CASE("MLP modules deeper than mlp_max_layers still chain linear nodes") {
  Generator gen(26);
  MLP<double> deep({2, 4, 4, 4, 1}, Activation::tanh, gen);
  const auto x = gen.normal<double>(Shape{5, 2});
  CHECK_GRADCHECK(gradcheck(
      [&](Tape<double>& t) { return weighted_sum(deep(t.constant(x, true))); }, deep.parameters()));
}
