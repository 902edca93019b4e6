// ActNorm, Permutation and LULinear: log-dets against brute-force Jacobians, exact inverses,
// gradchecks through small models, ActNorm's data-dependent initialisation, save/load, and a 2-D
// density that integrates to 1.
#include <doctest/doctest.h>

#include <unistd.h>
#include <cmath>
#include <filesystem>
#include <memory>
#include <numbers>
#include <string>

#include "flow_helpers.hpp"
#include "flowgrad/flows/actnorm.hpp"
#include "flowgrad/flows/coupling.hpp"
#include "flowgrad/flows/lu_linear.hpp"
#include "flowgrad/flows/models.hpp"
#include "flowgrad/flows/permutation.hpp"
#include "flowgrad/flows/registry.hpp"
#include "gradcheck_helpers.hpp"

using namespace flowgrad;
using namespace flowgrad::testing;
using D = double;

namespace {

const Index layer_dims[] = {2, 3, 5, 8};

// Non-identity parameter values; an ActNorm is marked initialised so that it keeps them.
template <Scalar T>
void randomize(ActNorm<T>& a, Generator& gen) {
  a.b.value = gen.normal<T>(Shape{a.dim()}, T(0), T(0.7));
  a.logs.value = gen.normal<T>(Shape{a.dim()}, T(0), T(0.5));
  a.initialized[0] = T(1);
}
template <Scalar T>
void randomize(LULinear<T>& f, Generator& gen) {
  const Index d = f.dim();
  f.lower.value = gen.normal<T>(Shape{d, d}, T(0), T(0.3));
  f.upper.value = gen.normal<T>(Shape{d, d}, T(0), T(0.3));
  f.u_diag.value = gen.normal<T>(Shape{d}, T(0.5), T(0.5));
  f.bias.value = gen.normal<T>(Shape{d}, T(0), T(0.5));
}

// forward's log-det against the brute-force Jacobian, and both inverse checks to 1e-10.
void check_layer(Bijector<D>& f, const Tensor<D>& x) { check_bijector(f, x, 1e-6, 1e-10, 1e-10); }

// A unique file name in the temporary directory, removed with the object.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& name)
      : path((std::filesystem::temp_directory_path() /
              ("flowgrad_layers_" + std::to_string(::getpid()) + "_" + name))
                 .string()) {}
  ~TempFile() { std::filesystem::remove(path); }
};

template <Scalar T>
std::unique_ptr<Composition<T>> all_three(Index d, Generator& gen) {
  auto flow = std::make_unique<Composition<T>>(d);
  auto an = std::make_unique<ActNorm<T>>(d);
  randomize(*an, gen);
  flow->add(std::move(an));
  flow->add(std::make_unique<Permutation<T>>(d, PermutationMode::random, gen));
  std::vector<int> mask(static_cast<std::size_t>(d), 0);
  for (Index j = 0; j < d / 2; ++j) mask[static_cast<std::size_t>(j)] = 1;
  flow->add(std::make_unique<AffineCoupling<T>>(mask, CouplingConfig{6, 1, Activation::tanh}, gen));
  auto lu = std::make_unique<LULinear<T>>(d);
  randomize(*lu, gen);
  flow->add(std::move(lu));
  flow->add(std::make_unique<Permutation<T>>(d, PermutationMode::reverse, gen));
  return flow;
}

}  // namespace

TEST_CASE("actnorm: log-det against the Jacobian, exact inverse") {
  for (Index d : layer_dims) {
    CAPTURE(d);
    Generator gen(static_cast<std::uint64_t>(d));
    ActNorm<D> f(d);
    randomize(f, gen);
    check_layer(f, gen.normal<D>(Shape{6, d}, 0.0, 1.5));
    f.eval();
    check_layer(f, gen.normal<D>(Shape{4, d}));
  }
}

TEST_CASE("permutation: reverse and random orders, log-det 0, exact inverse") {
  for (Index d : layer_dims) {
    CAPTURE(d);
    Generator gen(10 + static_cast<std::uint64_t>(d));
    Permutation<D> rev(d, PermutationMode::reverse, gen);
    for (Index j = 0; j < d; ++j) CHECK(rev.order[j] == static_cast<D>(d - 1 - j));
    check_layer(rev, gen.normal<D>(Shape{5, d}));
    Permutation<D> rnd(d, PermutationMode::random, gen);
    check_layer(rnd, gen.normal<D>(Shape{5, d}));
    // y[:, j] = x[:, order[j]]
    const auto x = gen.normal<D>(Shape{3, d});
    Tape<D> t;
    const auto y = rnd.forward(t.constant(x)).out.value();
    for (Index i = 0; i < 3; ++i)
      for (Index j = 0; j < d; ++j) CHECK(y(i, j) == x(i, static_cast<Index>(rnd.order[j])));
  }
  // The same seed gives the same order; the order is a permutation.
  Generator g1(3), g2(3);
  Permutation<D> a(8, PermutationMode::random, g1), b(8, PermutationMode::random, g2);
  CHECK(a.indices() == b.indices());
}

TEST_CASE("permutation: an order that is not a permutation is rejected when the layer runs") {
  Generator gen(1);
  Permutation<D> p(3, PermutationMode::random, gen);
  Tape<D> t;
  const auto x = t.constant(gen.normal<D>(Shape{2, 3}));
  for (const auto& bad :
       {std::vector<D>{0, 0, 1}, std::vector<D>{0, 1, 3}, std::vector<D>{0, 1.5, 2},
        std::vector<D>{0, -1, 2}, std::vector<D>{0, 1, NAN}}) {
    for (Index j = 0; j < 3; ++j) p.order[j] = bad[static_cast<std::size_t>(j)];
    CHECK_THROWS_AS(p.forward(x), std::invalid_argument);
    CHECK_THROWS_AS(p.inverse(x), std::invalid_argument);
  }
  p.order[0] = 2;
  p.order[1] = 0;
  p.order[2] = 1;
  CHECK_NOTHROW(p.forward(x));
  CHECK(p.indices() == std::vector<Index>{2, 0, 1});
}

TEST_CASE("lu_linear: identity at start, log-det against the Jacobian, exact inverse") {
  for (Index d : layer_dims) {
    CAPTURE(d);
    Generator gen(20 + static_cast<std::uint64_t>(d));
    LULinear<D> f(d);
    {
      Tape<D> t;
      const auto x = gen.normal<D>(Shape{4, d});
      const auto r = f.forward(t.constant(x));
      for (Index k = 0; k < x.numel(); ++k) CHECK(std::abs(r.out.value()[k] - x[k]) < 1e-15);
      for (Index i = 0; i < 4; ++i) CHECK(std::abs(r.log_det.value()[i]) < 1e-15);
    }
    randomize(f, gen);
    check_layer(f, gen.normal<D>(Shape{6, d}, 0.0, 1.5));
    // y = x W^T + bias with W = L U as the values say.
    const auto w = f.weight();
    const auto x = gen.normal<D>(Shape{2, d});
    Tape<D> t;
    const auto y = f.forward(t.constant(x)).out.value();
    for (Index i = 0; i < 2; ++i)
      for (Index r = 0; r < d; ++r) {
        double acc = f.bias.value[r];
        for (Index c = 0; c < d; ++c) acc += w[static_cast<std::size_t>(r * d + c)] * x(i, c);
        CHECK(std::abs(y(i, r) - acc) < 1e-12);
      }
  }
}

TEST_CASE("float: the three layers round trip to float precision") {
  for (Index d : layer_dims) {
    CAPTURE(d);
    Generator gen(30 + static_cast<std::uint64_t>(d));
    auto flow = all_three<float>(d, gen);
    const auto x = gen.normal<float>(Shape{50, d});
    Tape<float> t;
    const auto fwd = flow->forward(t.constant(x));
    const auto inv = flow->inverse(fwd.out);
    for (Index k = 0; k < x.numel(); ++k) CHECK(std::abs(inv.out.value()[k] - x[k]) < 1e-4f);
    for (Index i = 0; i < 50; ++i)
      CHECK(std::abs(inv.log_det.value()[i] + fwd.log_det.value()[i]) < 1e-4f);
  }
}

TEST_CASE("gradcheck: -mean log p through a model with the three layers, every parameter") {
  for (Index d : layer_dims) {
    CAPTURE(d);
    Generator gen(40 + static_cast<std::uint64_t>(d));
    DensityFlow<D> m(all_three<D>(d, gen));
    const auto x = gen.normal<D>(Shape{7, d}, 0.0, 1.5);
    CHECK_GRADCHECK(
        gradcheck([&](Tape<D>& t) { return -mean(m.log_prob(t.constant(x))); }, m.parameters()));
  }
}

TEST_CASE("gradcheck: the differentiable inverses of actnorm and permutation") {
  for (Index d : layer_dims) {
    CAPTURE(d);
    Generator gen(50 + static_cast<std::uint64_t>(d));
    ActNorm<D> a(d);
    randomize(a, gen);
    Permutation<D> p(d, PermutationMode::random, gen);
    const auto y = gen.normal<D>(Shape{5, d});
    CHECK_GRADCHECK(gradcheck(
        [&](Tape<D>& t) {
          const auto r = a.inverse(p.inverse(t.constant(y)).out);
          return weighted_sum(r.out) + sum(r.log_det);
        },
        a.parameters()));
    // With respect to the input too: select_columns routes each gradient to its column.
    CHECK_GRADCHECK(gradcheck(
        [&](Tape<D>&, std::span<const Var<D>> in) {
          return weighted_sum(a.inverse(p.inverse(in[0]).out).out);
        },
        {y}));
  }
}

TEST_CASE("gradcheck: lu_linear's inverse (two triangular solves), parameters and input") {
  for (Index d : layer_dims) {
    CAPTURE(d);
    Generator gen(60 + static_cast<std::uint64_t>(d));
    LULinear<D> f(d);
    randomize(f, gen);
    const auto y = gen.normal<D>(Shape{4, d});
    CHECK_GRADCHECK(gradcheck(
        [&](Tape<D>& t) {
          const auto r = f.inverse(t.constant(y));
          return weighted_sum(r.out) + sum(r.log_det);
        },
        f.parameters()));
    CHECK_GRADCHECK(gradcheck(
        [&](Tape<D>&, std::span<const Var<D>> in) { return weighted_sum(f.inverse(in[0]).out); },
        {y}));
  }
}

TEST_CASE("actnorm: the first training forward initialises from the batch, once") {
  for (Index d : layer_dims) {
    CAPTURE(d);
    Generator gen(60 + static_cast<std::uint64_t>(d));
    ActNorm<D> f(d);
    REQUIRE_FALSE(f.is_initialized());
    // Columns with different means and spreads (3 to 5, so the 1e-6 in std + 1e-6 moves the
    // variance by less than 1e-6).
    Tensor<D> x = gen.normal<D>(Shape{300, d});
    for (Index i = 0; i < 300; ++i)
      for (Index j = 0; j < d; ++j) x(i, j) = x(i, j) * (3 + 2.0 * j / d) + 2.0 * j - 1;
    {
      // Eval mode and the inverse do not initialise.
      Tape<D> t;
      f.eval();
      f.forward(t.constant(x));
      f.train();
      f.inverse(t.constant(x));
      CHECK_FALSE(f.is_initialized());
    }
    Tape<D> t;
    const auto r = f.forward(t.constant(x));
    CHECK(f.is_initialized());
    CHECK(f.initialized[0] == 1);
    const auto& y = r.out.value();
    double logs_sum = 0;
    for (Index j = 0; j < d; ++j) {
      double m = 0, v = 0;
      for (Index i = 0; i < 300; ++i) m += y(i, j);
      m /= 300;
      for (Index i = 0; i < 300; ++i) v += (y(i, j) - m) * (y(i, j) - m);
      v /= 300;
      CHECK(std::abs(m) < 1e-6);
      CHECK(std::abs(v - 1) < 1e-6);
      logs_sum += f.logs.value[j];
    }
    for (Index i = 0; i < 300; ++i) CHECK(r.log_det.value()[i] == doctest::Approx(logs_sum));
    // A second batch leaves the parameters alone.
    const Tensor<D> b = f.b.value, logs = f.logs.value;
    f.forward(t.constant(gen.normal<D>(Shape{10, d}, 5.0, 0.1)));
    for (Index j = 0; j < d; ++j) {
      CHECK(f.b.value[j] == b[j]);
      CHECK(f.logs.value[j] == logs[j]);
    }
  }
  ActNorm<D> one(2);
  Tape<D> t;
  CHECK_THROWS_AS(one.forward(t.constant(Tensor<D>(Shape{1, 2}))), std::invalid_argument);
}

TEST_CASE("save_flow / load_density_flow keep the three layers, actnorm's initialised state too") {
  const Index d = 5;
  Generator gen(70);
  auto chain = std::make_unique<Composition<D>>(d);
  chain->add(std::make_unique<ActNorm<D>>(d));  // initialised by the training forward below
  chain->add(std::make_unique<Permutation<D>>(d, PermutationMode::random, gen));
  chain->add(std::make_unique<AffineCoupling<D>>(std::vector<int>{1, 1, 0, 0, 0},
                                                 CouplingConfig{6, 1, Activation::tanh}, gen));
  auto lu = std::make_unique<LULinear<D>>(d);
  randomize(*lu, gen);
  chain->add(std::move(lu));
  chain->add(std::make_unique<Permutation<D>>(d, PermutationMode::reverse, gen));
  chain->add(std::make_unique<ActNorm<D>>(d));  // left uninitialised: the model stays in eval
  DensityFlow<D> model(std::move(chain));
  {
    Tape<D> t;
    auto& first = static_cast<ActNorm<D>&>(model.transform()[0]);
    first.forward(t.constant(gen.normal<D>(Shape{64, d}, 1.0, 2.0)));
    REQUIRE(first.is_initialized());
  }
  TempFile file("round_trip.safetensors");
  save_flow(file.path, model);
  auto loaded = load_density_flow<D>(file.path);
  CHECK(architecture_json(loaded->transform().spec()) ==
        architecture_json(model.transform().spec()));
  auto& a0 = static_cast<ActNorm<D>&>(loaded->transform()[0]);
  auto& a5 = static_cast<ActNorm<D>&>(loaded->transform()[5]);
  CHECK(a0.is_initialized());
  CHECK_FALSE(a5.is_initialized());
  auto& p_orig = static_cast<Permutation<D>&>(model.transform()[1]);
  auto& p_load = static_cast<Permutation<D>&>(loaded->transform()[1]);
  CHECK(p_orig.indices() == p_load.indices());
  CHECK(p_load.mode() == PermutationMode::random);
  const auto x = gen.normal<D>(Shape{16, d});
  model.eval();
  loaded->eval();
  const auto lp = model.log_prob(x), lq = loaded->log_prob(x);
  for (Index i = 0; i < 16; ++i) CHECK(lp[i] == lq[i]);
  // The loaded model's next training forward does not initialise layer 0 again (layer 5, never
  // initialised, does).
  const Tensor<D> b0 = a0.b.value;
  loaded->train();
  {
    Tape<D> t;
    loaded->transform().forward(t.constant(gen.normal<D>(Shape{8, d}, -3.0, 0.5)));
  }
  for (Index j = 0; j < d; ++j) CHECK(a0.b.value[j] == b0[j]);
  CHECK(a5.is_initialized());
}

TEST_CASE("the registry rebuilds the layers and names a bad permutation mode") {
  auto chain = build_flow<D>(
      R"({"kind":"composition","dim":"3","layers":[{"kind":"actnorm","dim":"3"},)"
      R"({"kind":"permutation","dim":"3","mode":"reverse"},{"kind":"lu_linear","dim":"3"}]})");
  CHECK(chain->size() == 3);
  CHECK((*chain)[1].kind() == "permutation");
  std::string msg;
  try {
    build_flow<D>(R"({"kind":"composition","dim":"3","layers":[)"
                  R"({"kind":"permutation","dim":"3","mode":"sideways"}]})");
  } catch (const std::invalid_argument& e) {
    msg = e.what();
  }
  CHECK(msg.find("the permutation layer at layers.0 has setting 'mode' = 'sideways'") == 0);
}

TEST_CASE("a 2-D density with actnorm, permutation, lu_linear and a coupling integrates to 1") {
  Generator gen(80);
  auto chain = std::make_unique<Composition<D>>(2);
  auto an = std::make_unique<ActNorm<D>>(2);
  an->initialize_from(gen.normal<D>(Shape{200, 2}, 0.3, 1.4));
  chain->add(std::move(an));
  chain->add(std::make_unique<AffineCoupling<D>>(AffineCoupling<D>::half_mask(2, 0),
                                                 CouplingConfig{8, 1, Activation::tanh}, gen));
  chain->add(std::make_unique<Permutation<D>>(2, PermutationMode::reverse, gen));
  auto lu = std::make_unique<LULinear<D>>(2);
  randomize(*lu, gen);
  chain->add(std::move(lu));
  chain->add(std::make_unique<AffineCoupling<D>>(AffineCoupling<D>::half_mask(2, 1),
                                                 CouplingConfig{8, 1, Activation::tanh}, gen));
  DensityFlow<D> model(std::move(chain));
  model.eval();
  CHECK(mass_2d(model) == doctest::Approx(1.0).epsilon(0.01));
}
