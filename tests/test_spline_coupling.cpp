// SplineCoupling: log-det against a brute-force Jacobian, inverse round trips, a gradcheck of
// -mean log p through a few of them, and the save_flow / load_density_flow round trip.
#include <doctest/doctest.h>

#include <unistd.h>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>

#include "flow_helpers.hpp"
#include "flowgrad/flows/models.hpp"
#include "flowgrad/flows/registry.hpp"
#include "flowgrad/flows/spline_coupling.hpp"
#include "gradcheck_helpers.hpp"

using namespace flowgrad;
using namespace flowgrad::testing;
using D = double;

namespace {

SplineCouplingConfig small_config(Index bins, double bound) {
  SplineCouplingConfig c;
  c.bins = bins;
  c.tail_bound = bound;
  c.hidden = 6;
  c.hidden_layers = 2;
  c.activation = Activation::tanh;
  return c;
}

const Index dims[] = {2, 3, 5};

}  // namespace

TEST_CASE("spline coupling: log-det against the Jacobian, inverse round trip, any mask") {
  for (Index d : dims)
    for (Index bins : {3, 8}) {
      CAPTURE(d);
      CAPTURE(bins);
      Generator gen(200 + static_cast<std::uint64_t>(d * 10 + bins));
      std::vector<std::vector<int>> masks{AffineCoupling<D>::half_mask(d, 0),
                                          AffineCoupling<D>::half_mask(d, 1)};
      std::vector<int> scattered(static_cast<std::size_t>(d));
      for (Index j = 0; j < d; ++j) scattered[static_cast<std::size_t>(j)] = j % 2;
      masks.push_back(scattered);
      for (const auto& mask : masks) {
        SplineCoupling<D> f(mask, small_config(bins, 2.0), gen);
        randomize_parameters(f, gen, 0.7);
        // Scale 1.5 against a bound of 2: some elements fall in the tails.
        const Tensor<D> x = gen.normal<D>(Shape{8, d}, 0.0, 1.5);
        Tape<D> t;
        NoGradGuard<D> guard(t);
        const FlowResult<D> fwd = f.forward(t.constant(x));
        const auto brute = brute_force_log_det(f, x);
        for (Index i = 0; i < x.rows(); ++i) {
          CAPTURE(i);
          const double b = brute[static_cast<std::size_t>(i)];
          CHECK(std::abs(fwd.log_det.value()[i] - b) < 1e-6 * (1 + std::abs(b)));
        }
        // Fixed columns pass unchanged.
        for (Index i = 0; i < x.rows(); ++i)
          for (Index j = 0; j < d; ++j)
            if (mask[static_cast<std::size_t>(j)]) CHECK(fwd.out.value()(i, j) == x(i, j));
        const FlowResult<D> inv = f.inverse(fwd.out);
        for (Index k = 0; k < x.numel(); ++k) CHECK(std::abs(inv.out.value()[k] - x[k]) < 1e-9);
        for (Index i = 0; i < x.rows(); ++i)
          CHECK(std::abs(inv.log_det.value()[i] + fwd.log_det.value()[i]) < 1e-8);
      }
    }
}

TEST_CASE("spline coupling: float inverts to float precision; a fresh layer is finite") {
  Generator gen(300);
  SplineCoupling<float> f(AffineCoupling<float>::half_mask(4, 0), small_config(8, 3.0), gen);
  {
    Tape<float> t;
    const auto x = gen.normal<float>(Shape{32, 4}, 0.0f, 2.0f);
    const auto r = f.forward(t.constant(x));
    for (Index k = 0; k < r.out.value().numel(); ++k) CHECK(std::isfinite(r.out.value()[k]));
  }
  randomize_parameters(f, gen, 0.7);
  Tape<float> t;
  const auto x = gen.normal<float>(Shape{32, 4}, 0.0f, 2.0f);
  const auto y = f.forward(t.constant(x)).out;
  const auto back = f.inverse(y).out.value();
  for (Index k = 0; k < x.numel(); ++k) CHECK(std::abs(back[k] - x[k]) < 1e-4f);
}

TEST_CASE("gradcheck: -mean log p through three spline couplings, every parameter") {
  Generator gen(310);
  const Index d = 3;
  auto chain = std::make_unique<Composition<D>>(d);
  for (int l = 0; l < 3; ++l)
    chain->add(std::make_unique<SplineCoupling<D>>(AffineCoupling<D>::half_mask(d, l % 2),
                                                   small_config(4, 2.5), gen));
  DensityFlow<D> m(std::move(chain));
  randomize_parameters(m, gen, 0.5);
  const auto x = gen.normal<D>(Shape{10, d}, 0.0, 1.5);
  const auto params = m.parameters();
  CHECK(params.size() == 18);  // 3 layers x 3 linear layers x (weight, bias)
  CHECK_GRADCHECK(gradcheck([&](Tape<D>& t) { return -mean(m.log_prob(t.constant(x))); }, params));
}

TEST_CASE_TEMPLATE("spline coupling: save_flow / load_density_flow gives identical log_prob", T,
                   float, double) {
  Generator gen(320);
  const Index d = 3;
  auto chain = std::make_unique<Composition<T>>(d);
  SplineCouplingConfig c = small_config(5, 2.75);
  c.activation = Activation::relu;
  chain->add(std::make_unique<SplineCoupling<T>>(AffineCoupling<T>::half_mask(d, 0), c, gen));
  chain->add(std::make_unique<SplineCoupling<T>>(std::vector<int>{1, 0, 1}, c, gen));
  DensityFlow<T> density(std::move(chain));
  randomize_parameters(density, gen, 0.5);
  char tmpl[] = "/tmp/flowgrad-spline-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const std::string path = dir + "/flow.safetensors";
  save_flow(path, density);
  auto loaded = load_density_flow<T>(path);
  std::filesystem::remove_all(dir);
  CHECK(architecture_json(loaded->transform().spec()) ==
        architecture_json(density.transform().spec()));
  const auto* layer = dynamic_cast<const SplineCoupling<T>*>(&loaded->transform()[1]);
  REQUIRE(layer != nullptr);
  CHECK(layer->config().bins == 5);
  CHECK(layer->config().tail_bound == 2.75);
  CHECK(layer->mask() == std::vector<int>{1, 0, 1});
  const Tensor<T> x = gen.normal<T>(Shape{16, d}, T(0), T(2));
  const Tensor<T> a = density.log_prob(x), b = loaded->log_prob(x);
  REQUIRE(a.shape() == b.shape());
  CHECK(std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.numel()) * sizeof(T)) == 0);
}

TEST_CASE("spline coupling: rejects bad settings") {
  Generator gen(330);
  SplineCouplingConfig c = small_config(0, 2.0);
  CHECK_THROWS_AS(SplineCoupling<D>(AffineCoupling<D>::half_mask(2, 0), c, gen),
                  std::invalid_argument);
  c = small_config(4, -1.0);
  CHECK_THROWS_AS(SplineCoupling<D>(AffineCoupling<D>::half_mask(2, 0), c, gen),
                  std::invalid_argument);
  CHECK_THROWS_AS(SplineCoupling<D>(std::vector<int>{1, 1}, small_config(4, 2.0), gen),
                  std::invalid_argument);
}

TEST_CASE("make_nsf: alternating spline couplings, rebuilt from its file alone") {
  Generator gen(41);
  NSFConfig c;
  c.dim = 3;
  c.couplings = 3;
  c.coupling = small_config(4, 3.0);
  DensityFlow<double> nsf(make_nsf<double>(c, gen));
  REQUIRE(nsf.transform().size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    const auto* layer = dynamic_cast<const SplineCoupling<double>*>(&nsf.transform()[i]);
    REQUIRE(layer != nullptr);
    CHECK(layer->mask() == AffineCoupling<double>::half_mask(3, static_cast<int>(i % 2)));
  }
  const Tensor<double> x = gen.normal<double>(Shape{8, 3});
  randomize_parameters(nsf, gen, 0.5);
  char tmpl[] = "/tmp/flowgrad-nsf-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  save_flow(dir + "/nsf.safetensors", nsf);
  auto loaded = load_density_flow<double>(dir + "/nsf.safetensors");
  std::filesystem::remove_all(dir);
  const Tensor<double> a = nsf.log_prob(x), b = loaded->log_prob(x);
  CHECK(std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.numel()) * sizeof(double)) == 0);
}
