// Conditional flows p(x | c): every conditioned layer's log-det at a fixed context against a
// brute-force Jacobian, gradients with respect to the context (gradcheck), the autoregressive
// property with a context, context checks, the file round trip, and a conditional density fitted
// to data whose answer is known.
#include <doctest/doctest.h>

#include <unistd.h>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>

#include "flow_helpers.hpp"
#include "flowgrad/flows/fit.hpp"
#include "flowgrad/flows/models.hpp"
#include "flowgrad/flows/registry.hpp"
#include "gradcheck_helpers.hpp"

using namespace flowgrad;
using namespace flowgrad::testing;
using D = double;

namespace {

constexpr Index kContext = 2;

// A layer at one fixed context row, as an unconditional bijector, for check_bijector.
class AtContext : public Bijector<D> {
 public:
  AtContext(Bijector<D>& inner, Tensor<D> row)
      : Bijector<D>(inner.dim()), inner_(inner), row_(std::move(row)) {}
  std::string kind() const override { return "at_context"; }
  void named_parameters(const std::string&, std::vector<NamedParameter<D>>&) override {}

 protected:
  FlowResult<D> forward_impl(const Var<D>& x, const Var<D>&) override {
    return inner_.forward(x, tiled(x));
  }
  FlowResult<D> inverse_impl(const Var<D>& y, const Var<D>&) override {
    return inner_.inverse(y, tiled(y));
  }

 private:
  Var<D> tiled(const Var<D>& v) const {
    Tensor<D> c(Shape{v.rows(), row_.numel()});
    for (Index i = 0; i < v.rows(); ++i)
      for (Index j = 0; j < row_.numel(); ++j) c(i, j) = row_[j];
    return v.tape().constant(c);
  }
  Bijector<D>& inner_;
  Tensor<D> row_;
};

struct Case {
  const char* name;
  std::function<std::unique_ptr<Bijector<D>>(Index dim, Generator&)> make;
};

const Case cases[] = {
    {"affine_coupling",
     [](Index d, Generator& g) {
       return std::make_unique<AffineCoupling<D>>(
           AffineCoupling<D>::half_mask(d, 0), CouplingConfig{8, 2, Activation::tanh, kContext}, g);
     }},
    {"spline_coupling",
     [](Index d, Generator& g) {
       return std::make_unique<SplineCoupling<D>>(
           AffineCoupling<D>::half_mask(d, 1),
           SplineCouplingConfig{5, 3.0, 8, 2, Activation::tanh, kContext}, g);
     }},
    {"masked_affine_autoregressive",
     [](Index d, Generator& g) {
       MaskedAffineConfig c;
       c.made = {8, 2, Activation::tanh, kContext};
       return std::make_unique<MaskedAffineAutoregressive<D>>(d, c, g);
     }},
    {"masked_spline_autoregressive",
     [](Index d, Generator& g) {
       return std::make_unique<MaskedSplineAutoregressive<D>>(
           d, SplineCouplingConfig{5, 3.0, 8, 2, Activation::tanh, kContext}, g);
     }},
};

}  // namespace

TEST_CASE("conditioned layers: log-det against the Jacobian and inverse, at several contexts") {
  for (const Case& c : cases)
    for (Index d : {2, 3, 5}) {
      CAPTURE(c.name);
      CAPTURE(d);
      Generator gen(700 + static_cast<std::uint64_t>(d));
      auto layer = c.make(d, gen);
      CHECK(layer->context_dim() == kContext);
      randomize_parameters(*layer, gen, 0.6);
      for (int k = 0; k < 2; ++k) {
        AtContext at(*layer, gen.normal<D>(Shape{kContext}, 0.0, 1.5));
        check_bijector(at, gen.normal<D>(Shape{6, d}, 0.0, 1.5));
      }
    }
}

TEST_CASE("gradcheck: -mean log p(x | c) with respect to every parameter and the context") {
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Generator gen(710);
    const Index d = 3;
    auto chain = std::make_unique<Composition<D>>(d);
    chain->add(c.make(d, gen));
    chain->add(std::make_unique<Permutation<D>>(d, PermutationMode::reverse, gen));
    chain->add(c.make(d, gen));
    DensityFlow<D> model(std::move(chain));
    CHECK(model.context_dim() == kContext);
    randomize_parameters(model, gen, 0.5);
    const Tensor<D> x = gen.normal<D>(Shape{5, d});
    Parameter<D> context(gen.normal<D>(Shape{5, kContext}));
    auto params = model.parameters();
    params.push_back(&context);
    CHECK_GRADCHECK(gradcheck(
        [&](Tape<D>& t) { return -mean(model.log_prob(t.constant(x), t.parameter(context))); },
        params));
    // The context really matters: its gradient is not zero.
    Tape<D> t;
    context.grad.fill(0);
    t.backward(-mean(model.log_prob(t.constant(x), t.parameter(context))));
    double norm = 0;
    for (Index k = 0; k < context.grad.numel(); ++k) norm += std::abs(context.grad[k]);
    CHECK(norm > 1e-6);
  }
}

TEST_CASE("made with a context: x's order still holds, every output sees the context") {
  Generator gen(720);
  const Index d = 4, per = 2;
  MADE<D> made(d, per, MADEConfig{12, 2, Activation::tanh, 3}, gen, false);
  Tape<D> t;
  const Var<D> x = t.constant(gen.normal<D>(Shape{1, d}), true);
  const Var<D> c = t.constant(gen.normal<D>(Shape{1, 3}), true);
  const Var<D> y = made(x, c);
  for (Index o = 0; o < d * per; ++o) {
    CAPTURE(o);
    Tape<D> t2;
    const Var<D> x2 = t2.constant(x.value(), true), c2 = t2.constant(c.value(), true);
    Tensor<D> seed(Shape{1, d * per}, 0.0);
    seed[o] = 1;
    t2.backward(made(x2, c2), seed);
    for (Index i = 0; i < d; ++i)
      if (i >= o / per) CHECK(x2.grad()[i] == 0.0);
    double seen = 0;
    for (Index j = 0; j < 3; ++j) seen += std::abs(c2.grad()[j]);
    CHECK(seen > 1e-9);
  }
  CHECK_THROWS_AS(made(x), std::invalid_argument);
  CHECK(y.cols() == d * per);
}

TEST_CASE("a conditional model names a missing, unwanted or wrong-width context") {
  Generator gen(730);
  NSFConfig c;
  c.coupling.context = 2;
  DensityFlow<D> conditional(make_nsf<D>(c, gen));
  DensityFlow<D> plain(make_nsf<D>(NSFConfig{}, gen));
  const Tensor<D> x = gen.normal<D>(Shape{4, 2});
  auto message = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(message([&] { conditional.log_prob(x); }) ==
        "the model is conditional: it needs a context of 2 columns");
  CHECK(message([&] {
          plain.log_prob(x, gen.normal<D>(Shape{4, 2}));
        }) == "the model is unconditional: it takes no context");
  CHECK(message([&] {
          conditional.log_prob(x, gen.normal<D>(Shape{4, 3}));
        }).find("context of shape [4, 3], expected [4, 2]") != std::string::npos);
  Tensor<D> bad = gen.normal<D>(Shape{4, 2});
  bad[3] = std::nan("");
  CHECK(message([&] { conditional.log_prob(x, bad); }).find("context has NaN at row 1, column 1") !=
        std::string::npos);
  // Conditioned layers of two widths in one chain.
  auto chain = std::make_unique<Composition<D>>(2);
  chain->add(cases[0].make(2, gen));
  CHECK_THROWS_AS(
      chain->add(std::make_unique<AffineCoupling<D>>(
          AffineCoupling<D>::half_mask(2, 1), CouplingConfig{8, 1, Activation::relu, 5}, gen)),
      std::invalid_argument);
}

TEST_CASE_TEMPLATE("conditional models: rebuilt from their file with the context width", T, float,
                   double) {
  Generator gen(740);
  MAFConfig maf;
  maf.dim = 3;
  maf.layers = 2;
  maf.layer.made.context = 2;
  RealNVPConfig nvp;
  nvp.dim = 3;
  nvp.couplings = 2;
  nvp.coupling.context = 2;
  nvp.batch_norm = false;
  for (auto* raw :
       {new DensityFlow<T>(make_maf<T>(maf, gen)), new DensityFlow<T>(make_realnvp<T>(nvp, gen))}) {
    std::unique_ptr<DensityFlow<T>> m(raw);
    randomize_parameters(*m, gen, 0.3);
    char tmpl[] = "/tmp/flowgrad-cond-XXXXXX";
    const std::string dir = ::mkdtemp(tmpl);
    save_flow(dir + "/flow.safetensors", *m);
    auto loaded = load_density_flow<T>(dir + "/flow.safetensors");
    std::filesystem::remove_all(dir);
    CHECK(loaded->context_dim() == 2);
    const Tensor<T> x = gen.normal<T>(Shape{8, 3}), c = gen.normal<T>(Shape{8, 2});
    const Tensor<T> a = m->log_prob(x, c), b = loaded->log_prob(x, c);
    CHECK(std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.numel()) * sizeof(T)) == 0);
  }
}

TEST_CASE("fit a conditional density whose answer is known: x | c ~ N(2c, 0.3^2)") {
  // Rows are x then c. The true conditional entropy is log(0.3 sqrt(2 pi e)) = 0.2149 nats.
  Generator data_gen(750);
  auto rows = [&](Index n) {
    Tensor<float> r(Shape{n, 2});
    for (Index i = 0; i < n; ++i) {
      const double c = 4 * data_gen.uniform() - 2;
      r(i, 0) = float(2 * c + 0.3 * data_gen.normal());
      r(i, 1) = float(c);
    }
    return r;
  };
  const Tensor<float> train = rows(4096), test = rows(4096);
  Generator gen(751);
  MAFConfig c;
  c.dim = 1;
  c.layers = 2;
  c.layer.made.context = 1;
  DensityFlow<float> model(make_maf<float>(c, gen));
  FitOptions opt;
  opt.steps = 600;
  opt.batch = 256;
  opt.adam.lr = 1e-2;
  fit_density(model, train, opt);
  const double nll = test_nll(model, test);
  CHECK(nll < 0.2149 + 0.1);
  // An unconditional fit cannot do better than the marginal's spread (about 1.6 nats).
  // Samples follow the context: at c = 1.5 their mean is near 3.
  model.eval();
  const Tensor<float> at(Shape{2000, 1}, 1.5f);
  const Tensor<float> s = model.sample(at, gen);
  double mean = 0;
  for (Index i = 0; i < s.numel(); ++i) mean += s[i];
  CHECK(mean / 2000 == doctest::Approx(3.0).epsilon(0.05));
  CHECK_THROWS_AS(test_nll(model, gen.normal<float>(Shape{10, 1})), std::invalid_argument);
}

TEST_CASE(
    "a conditional variational flow: samples with log q(x | c) in one pass, and log q matches") {
  Generator gen(760);
  MAFConfig c;
  c.dim = 2;
  c.layers = 2;
  c.layer.made = {8, 2, Activation::tanh, 1};
  VariationalFlow<D> q(make_maf<D>(c, gen));
  randomize_parameters(q, gen, 0.5);
  Tape<D> t;
  const Tensor<D> ctx = gen.normal<D>(Shape{16, 1});
  const auto s = q.sample_and_log_prob(t, 16, gen, t.constant(ctx));
  const Tensor<D> again = q.log_prob(s.x.value(), ctx);
  for (Index i = 0; i < 16; ++i)
    CHECK(again[i] == doctest::Approx(s.log_q.value()[i]).epsilon(1e-10));
}
