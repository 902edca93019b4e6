// Bijectors: log-determinants against brute-force Jacobians, inverse round trips, gradchecks
// through whole models, and the errors users hit.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>

#include "flow_helpers.hpp"
#include "flowgrad/flows/batch_norm.hpp"
#include "flowgrad/flows/models.hpp"
#include "flowgrad/flows/planar.hpp"
#include "flowgrad/flows/radial.hpp"
#include "gradcheck_helpers.hpp"

using namespace flowgrad;
using namespace flowgrad::testing;
using D = double;

namespace {

const Index dims[] = {2, 3, 5};

}  // namespace

TEST_CASE(
    "planar: log-det against the Jacobian and exact inverse, both signs of w.u, saturated tanh") {
  for (Index d : dims) {
    CAPTURE(d);
    Generator gen(static_cast<std::uint64_t>(d));
    Planar<D> f(d, gen);
    for (double sign : {1.0, -1.0}) {
      CAPTURE(sign);
      // u = sign * 3 w + noise makes w.u clearly positive or clearly negative.
      for (Index j = 0; j < d; ++j) f.u.value[j] = sign * 3 * f.w.value[j] + 0.1 * gen.normal();
      double wu = 0;
      for (Index j = 0; j < d; ++j) wu += f.u.value[j] * f.w.value[j];
      REQUIRE(wu * sign > 0);
      check_bijector(f, gen.normal<D>(Shape{6, d}, 0.0, 1.5));
      // Far along w, tanh(w.x + b) saturates.
      Tensor<D> far(Shape{2, d});
      for (Index j = 0; j < d; ++j) {
        far(0, j) = 40 * f.w.value[j];
        far(1, j) = -40 * f.w.value[j];
      }
      check_bijector(f, far);
    }
  }
}

TEST_CASE("radial: log-det against the Jacobian and exact inverse, both signs of beta") {
  for (Index d : dims) {
    CAPTURE(d);
    Generator gen(10 + static_cast<std::uint64_t>(d));
    Radial<D> f(d, gen);
    f.alpha_raw.value[0] = 0.0;  // alpha = log 2
    for (double beta_raw : {2.0, -2.0}) {
      CAPTURE(beta_raw);
      f.beta_raw.value[0] = beta_raw;
      check_bijector(f, gen.normal<D>(Shape{6, d}, 0.0, 1.5));
    }
  }
}

TEST_CASE("affine coupling: log-det, inverse, any mask, large inputs stay finite") {
  for (Index d : dims) {
    CAPTURE(d);
    Generator gen(20 + static_cast<std::uint64_t>(d));
    for (int parity : {0, 1}) {
      AffineCoupling<D> f(AffineCoupling<D>::half_mask(d, parity), {8, 2, Activation::tanh}, gen);
      check_bijector(f, gen.normal<D>(Shape{6, d}));
    }
    std::vector<int> scattered(static_cast<std::size_t>(d));
    for (Index j = 0; j < d; ++j) scattered[static_cast<std::size_t>(j)] = j % 2 == 1 ? 1 : 0;
    AffineCoupling<D> g(scattered, {8, 2, Activation::relu}, gen);
    check_bijector(g, gen.normal<D>(Shape{6, d}));
    // s is bounded by tanh, so even huge inputs give finite outputs and log-dets.
    Tape<D> t;
    const auto r = g.forward(t.constant(gen.normal<D>(Shape{4, d}, 0.0, 1e4)));
    for (Index k = 0; k < r.out.value().numel(); ++k) CHECK(std::isfinite(r.out.value()[k]));
    for (Index i = 0; i < 4; ++i) CHECK(std::abs(r.log_det.value()[i]) <= static_cast<double>(d));
  }
}

TEST_CASE("batch norm: eval-mode log-det and inverse; training mode uses the batch statistics") {
  for (Index d : dims) {
    CAPTURE(d);
    Generator gen(30 + static_cast<std::uint64_t>(d));
    BatchNorm<D> bn(d);
    const auto data = gen.normal<D>(Shape{50, d}, 1.0, 3.0);
    {
      Tape<D> t;
      const auto y = bn.forward(t.constant(data)).out.value();
      // Training mode standardises the batch.
      for (Index j = 0; j < d; ++j) {
        double m = 0, v = 0;
        for (Index i = 0; i < 50; ++i) m += y(i, j) / 50;
        for (Index i = 0; i < 50; ++i) v += (y(i, j) - m) * (y(i, j) - m) / 50;
        CHECK(m == doctest::Approx(0).scale(1).epsilon(1e-9));
        CHECK(v == doctest::Approx(1).epsilon(1e-4));
      }
    }
    CHECK(bn.has_statistics());
    for (Index j = 0; j < d; ++j) {
      bn.log_gamma.value[j] = 0.3 * gen.normal();
      bn.beta.value[j] = gen.normal();
    }
    bn.eval();
    check_bijector(bn, gen.normal<D>(Shape{5, d}));
  }
}

TEST_CASE("batch norm: running averages move with momentum 0.1, and set_statistics is exact") {
  Generator gen(1);
  BatchNorm<D> bn(2);
  const auto x = gen.normal<D>(Shape{100, 2}, 5.0, 2.0);
  double m0 = 0;
  for (Index i = 0; i < 100; ++i) m0 += x(i, 0) / 100;
  Tape<D> t;
  bn.forward(t.constant(x));
  CHECK(bn.running_mean[0] == doctest::Approx(0.1 * m0));
  bn.set_statistics(x);
  CHECK(bn.running_mean[0] == doctest::Approx(m0));
}

TEST_CASE("composition adds log-dets and inverts in reverse order") {
  for (Index d : dims) {
    CAPTURE(d);
    Generator gen(40 + static_cast<std::uint64_t>(d));
    RealNVPConfig cfg;
    cfg.dim = d;
    cfg.couplings = 4;
    cfg.coupling = {8, 2, Activation::tanh};
    auto flow = make_realnvp<D>(cfg, gen);
    DensityFlow<D> model(std::move(flow));
    model.set_batch_norm_statistics(gen.normal<D>(Shape{200, d}, 0.5, 2.0));
    model.eval();
    check_bijector(model.transform(), gen.normal<D>(Shape{5, d}), 1e-6, 1e-8, 1e-6);
    // Planar and radial stacks too.
    auto planar = make_planar_stack<D>(d, 4, gen);
    check_bijector(*planar, gen.normal<D>(Shape{5, d}));
    auto radial = make_radial_stack<D>(d, 4, gen);
    check_bijector(*radial, gen.normal<D>(Shape{5, d}));
  }
}

TEST_CASE("float inverse round trips to float precision") {
  Generator gen(5);
  RealNVPConfig cfg;
  auto model = DensityFlow<float>(make_realnvp<float>(cfg, gen));
  model.set_batch_norm_statistics(gen.normal<float>(Shape{500, 2}));
  model.eval();
  auto planar = make_planar_stack<float>(2, 8, gen);
  const auto x = gen.normal<float>(Shape{100, 2});
  for (Bijector<float>* f : {static_cast<Bijector<float>*>(&model.transform()),
                             static_cast<Bijector<float>*>(planar.get())}) {
    Tape<float> t;
    const auto y = f->forward(t.constant(x)).out;
    const auto back = f->inverse(y).out.value();
    for (Index k = 0; k < x.numel(); ++k) CHECK(std::abs(back[k] - x[k]) < 1e-4f);
  }
}

TEST_CASE("gradcheck: -mean log p through whole models, every parameter") {
  Generator gen(50);
  const auto x = gen.normal<D>(Shape{12, 3}, 0.0, 1.5);
  SUBCASE("planar stack") {
    DensityFlow<D> m(make_planar_stack<D>(3, 3, gen));
    CHECK_GRADCHECK(
        gradcheck([&](Tape<D>& t) { return -mean(m.log_prob(t.constant(x))); }, m.parameters()));
  }
  SUBCASE("radial stack") {
    DensityFlow<D> m(make_radial_stack<D>(3, 3, gen));
    CHECK_GRADCHECK(
        gradcheck([&](Tape<D>& t) { return -mean(m.log_prob(t.constant(x))); }, m.parameters()));
  }
  SUBCASE("one affine coupling") {
    auto c = std::make_unique<Composition<D>>(3);
    c->add(std::make_unique<AffineCoupling<D>>(AffineCoupling<D>::half_mask(3, 0),
                                               CouplingConfig{6, 2, Activation::tanh}, gen));
    DensityFlow<D> m(std::move(c));
    CHECK_GRADCHECK(
        gradcheck([&](Tape<D>& t) { return -mean(m.log_prob(t.constant(x))); }, m.parameters()));
  }
  SUBCASE("batch norm in training mode (gradients through the batch statistics)") {
    auto c = std::make_unique<Composition<D>>(3);
    c->add(std::make_unique<Planar<D>>(3, gen));
    c->add(std::make_unique<BatchNorm<D>>(3));
    c->add(std::make_unique<Planar<D>>(3, gen));
    DensityFlow<D> m(std::move(c));
    CHECK_GRADCHECK(
        gradcheck([&](Tape<D>& t) { return -mean(m.log_prob(t.constant(x))); }, m.parameters()));
    // The input's gradient passes through the batch mean and variance as well.
    CHECK_GRADCHECK(gradcheck(
        [&](Tape<D>&, std::span<const Var<D>> v) { return -mean(m.log_prob(v[0])); }, {x}));
  }
  SUBCASE("RealNVP with batch norm, training mode") {
    RealNVPConfig cfg;
    cfg.dim = 3;
    cfg.couplings = 4;
    cfg.coupling = {6, 2, Activation::tanh};
    DensityFlow<D> m(make_realnvp<D>(cfg, gen));
    CHECK_GRADCHECK(
        gradcheck([&](Tape<D>& t) { return -mean(m.log_prob(t.constant(x))); }, m.parameters()));
  }
  SUBCASE("variational planar flow, reverse KL against a Gaussian target") {
    VariationalFlow<D> q(make_planar_stack<D>(3, 4, gen));
    CHECK_GRADCHECK(gradcheck(
        [&](Tape<D>& t) {
          Generator g(7);  // the same base samples at every evaluation
          const auto s = q.sample_and_log_prob(t, 16, g);
          return mean(s.log_q + sum(square(s.x), 1) * 0.5);
        },
        q.parameters()));
  }
}

TEST_CASE("errors: wrong width, NaN or inf input, inverse before statistics") {
  Generator gen(60);
  RealNVPConfig cfg;
  cfg.coupling.hidden = 8;
  DensityFlow<float> m(make_realnvp<float>(cfg, gen));
  Tape<float> t;
  CHECK_THROWS_WITH_AS(m.log_prob(t.constant(TensorF(Shape{4, 3}))),
                       doctest::Contains("input of shape [4, 3], expected [batch, 2]"),
                       std::invalid_argument);
  TensorF bad(Shape{4, 2});
  bad(2, 1) = std::nanf("");
  CHECK_THROWS_WITH_AS(
      m.log_prob(t.constant(bad)),
      doctest::Contains("layers.0 (affine_coupling) forward: input has NaN at row 2, column 1"),
      std::domain_error);
  bad(2, 1) = INFINITY;
  CHECK_THROWS_WITH_AS(m.log_prob(t.constant(bad)), doctest::Contains("inf at row 2"),
                       std::domain_error);
  m.eval();
  CHECK_THROWS_WITH_AS(m.sample(10, gen),
                       doctest::Contains("layers.13 (batch_norm) inverse: no running statistics"),
                       std::logic_error);
}
