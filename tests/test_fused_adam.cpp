// Adam::backward_step: the update applied inside the backward pass, as each gradient is formed,
// against backward() then step(), bit for bit, on one thread and two, and the cases where the pass
// must leave a parameter to the step after it.
#include <doctest/doctest.h>

#include <vector>

#include "flowgrad/autodiff/module.hpp"
#include "flowgrad/autodiff/ops.hpp"
#include "flowgrad/autodiff/optim.hpp"
#include "flowgrad/tensor/threads.hpp"

using namespace flowgrad;

namespace {

// Layers 24 -> 300 -> 300 -> 5 at batch 256: the middle weight is summed over the batch after
// the node's row blocks (its gradient in one product, updated from the product's output), the
// others and the biases in the blocks' partial sums (updated from their total). With a middle
// layer of 1000, its gradient goes a block of rows at a time (half an L2 each: two blocks or more
// on any L2 up to 2 MB), each updated as it is formed; 300 rows are one such block in float on an
// L2 of 1 MB or more, and go whole.
constexpr Index kBatch = 256;
const std::vector<Index> kSizes = {24, 300, 300, 5};
const std::vector<Index> kWideSizes = {24, 300, 1000, 5};

template <class T>
struct Run {
  explicit Run(const std::vector<Index>& sizes = kSizes)
      : net{sizes, Activation::relu, gen, Activation::tanh} {}
  Generator gen{7};
  MLP<T> net;
  Adam<T> adam{net.parameters(), {.lr = 3e-3, .beta2 = 0.99, .weight_decay = 1e-3}};
  Tape<T> tape;

  Var<T> loss(const Tensor<T>& x) {
    tape.reset();
    const Var<T> h = net(tape.constant(x));
    return mean(square(h - T(0.25)));
  }
};

template <class T>
bool same_bits(const Tensor<T>& a, const Tensor<T>& b) {
  if (!(a.shape() == b.shape())) return false;
  for (Index i = 0; i < a.numel(); ++i)
    if (a[i] != b[i]) return false;
  return true;
}

// Steps of both runs on the same batches; every parameter and moment must stay bit-identical.
template <class T>
void compare_steps(int threads, const std::vector<Index>& sizes = kSizes) {
  set_num_threads(threads);
  Run<T> plain(sizes), fused(sizes);
  Generator data(3);
  for (int step = 0; step < 4; ++step) {
    CAPTURE(step);
    const Tensor<T> x = data.normal<T>(Shape{kBatch, kSizes.front()});
    plain.adam.clear_grad();
    plain.tape.backward(plain.loss(x));
    plain.adam.step();
    fused.adam.clear_grad();
    fused.adam.backward_step(fused.loss(x));
    REQUIRE(fused.adam.steps() == plain.adam.steps());
    const auto p = plain.adam.params(), f = fused.adam.params();
    const AdamState<T> sp = plain.adam.state(), sf = fused.adam.state();
    for (std::size_t k = 0; k < p.size(); ++k) {
      CAPTURE(k);
      CHECK(same_bits(p[k]->value, f[k]->value));
      CHECK(same_bits(sp.exp_avg[k], sf.exp_avg[k]));
      CHECK(same_bits(sp.exp_avg_sq[k], sf.exp_avg_sq[k]));
      // Every parameter of an mlp() node fed once was updated inside the pass.
      CHECK_FALSE(f[k]->has_grad());
    }
  }
  set_num_threads(1);
}

}  // namespace

TEST_CASE_TEMPLATE("Adam::backward_step equals backward() then step(), bit for bit", T, float,
                   double) {
  SUBCASE("one thread") { compare_steps<T>(1); }
  SUBCASE("two threads") { compare_steps<T>(2); }
  SUBCASE("a gradient updated a block of rows at a time, one thread") {
    compare_steps<T>(1, kWideSizes);
  }
  SUBCASE("a gradient updated a block of rows at a time, two threads") {
    compare_steps<T>(2, kWideSizes);
  }
}

TEST_CASE("Adam::backward_step leaves shared and accumulated gradients to the step after") {
  // The same net applied to two batches: each weight's gradient is the sum of two nodes', so no
  // node has it whole. And a gradient kept from before (zero_grad, not clear_grad) is added to.
  const Tensor<float> xa = Generator(4).normal<float>(Shape{kBatch, kSizes.front()});
  const Tensor<float> xb = Generator(5).normal<float>(Shape{kBatch, kSizes.front()});
  for (const bool keep_grad : {false, true}) {
    CAPTURE(keep_grad);
    Run<float> plain, fused;
    auto loss = [&](Run<float>& r) {
      r.tape.reset();
      return mean(square(r.net(r.tape.constant(xa)))) + mean(r.net(r.tape.constant(xb)));
    };
    for (Run<float>* r : {&plain, &fused}) keep_grad ? r->adam.zero_grad() : r->adam.clear_grad();
    plain.tape.backward(loss(plain));
    plain.adam.step();
    fused.adam.backward_step(loss(fused));
    const auto p = plain.adam.params(), f = fused.adam.params();
    for (std::size_t k = 0; k < p.size(); ++k) {
      CAPTURE(k);
      CHECK(same_bits(p[k]->value, f[k]->value));
      REQUIRE(f[k]->has_grad());
      CHECK(same_bits(p[k]->grad, f[k]->grad));
    }
  }
}

TEST_CASE("Adam::backward_step updates parameters outside the pass as step() does") {
  // One net in the loss, one not on the tape (its gradient zeroed by hand): the weight decay moves
  // both, the second only in the step after the pass.
  std::vector<Tensor<float>> after[2];
  for (const bool fuse : {false, true}) {
    Generator gen(9);
    MLP<float> used({4, 40, 3}, Activation::relu, gen), unused({4, 8, 3}, Activation::relu, gen);
    std::vector<Parameter<float>*> params = used.parameters();
    for (Parameter<float>* q : unused.parameters()) params.push_back(q);
    Adam<float> adam(params, {.lr = 1e-2, .weight_decay = 0.1});
    adam.clear_grad();
    unused.zero_grad();
    Tape<float> tape;
    const Var<float> loss = sum(used(tape.constant(gen.normal<float>(Shape{32, 4}))));
    if (fuse) {
      adam.backward_step(loss);
    } else {
      tape.backward(loss);
      adam.step();
    }
    for (Parameter<float>* q : params) after[fuse].push_back(q->value);
    if (fuse)
      for (std::size_t k = 0; k < params.size(); ++k) {
        CAPTURE(k);
        CHECK(same_bits(after[0][k], after[1][k]));
        CHECK(params[k]->has_grad() == (k >= used.parameters().size()));
      }
  }
}
