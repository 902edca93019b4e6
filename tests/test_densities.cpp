// Densities of 2-D flow models integrate to 1, and samples have the moments log_prob implies.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "flowgrad/flows/models.hpp"

using namespace flowgrad;

namespace {

constexpr double pi = std::numbers::pi;

struct GridMoments {
  double mass = 0, mean[2] = {0, 0}, cov[3] = {0, 0, 0};  // cov: xx, xy, yy
  // Total variation distance to the base N(0, I): what the flow changed; ~0 for the identity.
  double tv_to_base = 0;
};

// Midpoint rule over [-half, half]^2 with n x n cells, in batches through log_prob.
template <class Model>
GridMoments integrate(Model& model, double half, Index n) {
  const double h = 2 * half / static_cast<double>(n);
  GridMoments g;
  double sx = 0, sy = 0, sxx = 0, sxy = 0, syy = 0;
  for (Index i = 0; i < n; ++i) {
    Tensor<double> row(Shape{n, 2});
    for (Index j = 0; j < n; ++j) {
      row(j, 0) = -half + (static_cast<double>(i) + 0.5) * h;
      row(j, 1) = -half + (static_cast<double>(j) + 0.5) * h;
    }
    const auto lp = model.log_prob(row);
    for (Index j = 0; j < n; ++j) {
      const double p = std::exp(lp[j]) * h * h;
      const double x = row(j, 0), y = row(j, 1);
      g.tv_to_base += 0.5 * std::abs(p - std::exp(-0.5 * (x * x + y * y)) / (2 * pi) * h * h);
      g.mass += p;
      sx += p * x;
      sy += p * y;
      sxx += p * x * x;
      sxy += p * x * y;
      syy += p * y * y;
    }
  }
  g.mean[0] = sx / g.mass;
  g.mean[1] = sy / g.mass;
  g.cov[0] = sxx / g.mass - g.mean[0] * g.mean[0];
  g.cov[1] = sxy / g.mass - g.mean[0] * g.mean[1];
  g.cov[2] = syy / g.mass - g.mean[1] * g.mean[1];
  return g;
}

DensityFlow<double> realnvp_with_statistics(std::uint64_t seed) {
  Generator gen(seed);
  RealNVPConfig cfg;
  cfg.couplings = 4;
  cfg.coupling = {16, 2, Activation::relu};
  DensityFlow<double> model(make_realnvp<double>(cfg, gen));
  // Initial weights give a near-Gaussian density; nudge the batch norms so it is skewed and
  // shifted, a harder thing to integrate.
  Tensor<double> data = gen.normal<double>(Shape{2000, 2});
  for (Index i = 0; i < 2000; ++i)
    data(i, 0) = 0.7 * data(i, 0) + 0.4 * data(i, 1) * data(i, 1) - 0.5;
  model.set_batch_norm_statistics(data);
  model.eval();
  return model;
}

// The largest |log det| of the flow's forward map on a grid over [-3, 3]^2, and the mean of
// |f(x) - x|: both 0 for a flow that does nothing.
struct Displacement {
  double max_abs_log_det = 0, mean_move = 0;
};

Displacement displacement(DensityFlow<double>& model) {
  const Index n = 25;
  Tensor<double> grid(Shape{n * n, 2});
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < n; ++j) {
      grid(i * n + j, 0) = -3 + 6 * static_cast<double>(i) / (n - 1);
      grid(i * n + j, 1) = -3 + 6 * static_cast<double>(j) / (n - 1);
    }
  Tape<double> tape;
  NoGradGuard<double> no_grad(tape);
  const FlowResult<double> r = model.transform().forward(tape.constant(grid));
  Displacement d;
  for (Index k = 0; k < n * n; ++k) {
    d.max_abs_log_det = std::max(d.max_abs_log_det, std::abs(r.log_det.value()[k]));
    d.mean_move += std::hypot(r.out.value()(k, 0) - grid(k, 0), r.out.value()(k, 1) - grid(k, 1)) /
                   static_cast<double>(n * n);
  }
  return d;
}

// A flow that did nothing (or next to it) would integrate to 1 as well: the density must differ
// from the base by a clear margin, and the map must stretch and move points. These fresh stacks
// are at total variation 0.52 (planar) and 0.24 (radial) from N(0, I), with |log det| up to 1.5
// and points moved by 1.3 and 0.37 on average; the identity gives 0 for all three.
void check_far_from_identity(const GridMoments& g, const Displacement& d) {
  CHECK(g.tv_to_base > 0.1);
  CHECK(d.max_abs_log_det > 0.5);
  CHECK(d.mean_move > 0.1);
}

}  // namespace

TEST_CASE("a 2-D RealNVP density in eval mode integrates to 1 within 1%") {
  auto model = realnvp_with_statistics(0);
  const auto g = integrate(model, 10.0, 500);
  CHECK(g.mass == doctest::Approx(1.0).epsilon(0.01));
}

TEST_CASE("a 2-D planar density integrates to 1 within 1%, far from the base") {
  Generator gen(1);
  DensityFlow<double> model(make_planar_stack<double>(2, 6, gen));
  const auto g = integrate(model, 10.0, 500);
  CHECK(g.mass == doctest::Approx(1.0).epsilon(0.01));
  check_far_from_identity(g, displacement(model));
}

TEST_CASE("a 2-D radial density integrates to 1 within 1%, far from the base") {
  Generator gen(2);
  DensityFlow<double> model(make_radial_stack<double>(2, 6, gen));
  const auto g = integrate(model, 10.0, 500);
  CHECK(g.mass == doctest::Approx(1.0).epsilon(0.01));
  check_far_from_identity(g, displacement(model));
}

TEST_CASE("samples of a fresh flow have the mean and covariance its log_prob implies") {
  auto model = realnvp_with_statistics(3);
  const auto g = integrate(model, 10.0, 400);
  Generator gen(4);
  const Index n = 200000;
  const auto s = model.sample(n, gen);
  double mx = 0, my = 0;
  for (Index i = 0; i < n; ++i) {
    mx += s(i, 0) / n;
    my += s(i, 1) / n;
  }
  double cxx = 0, cxy = 0, cyy = 0;
  for (Index i = 0; i < n; ++i) {
    cxx += (s(i, 0) - mx) * (s(i, 0) - mx) / n;
    cxy += (s(i, 0) - mx) * (s(i, 1) - my) / n;
    cyy += (s(i, 1) - my) * (s(i, 1) - my) / n;
  }
  INFO("grid mean (" << g.mean[0] << ", " << g.mean[1] << "), sample mean (" << mx << ", " << my
                     << ")");
  INFO("grid cov " << g.cov[0] << " " << g.cov[1] << " " << g.cov[2] << "; sample " << cxx << " "
                   << cxy << " " << cyy);
  // Standard errors are about sqrt(var / n) ~ 0.003 for the means; 5 of them plus grid error.
  const double tol_mean = 5 * std::sqrt(std::max(g.cov[0], g.cov[2]) / n) + 2e-3;
  CHECK(std::abs(mx - g.mean[0]) < tol_mean);
  CHECK(std::abs(my - g.mean[1]) < tol_mean);
  CHECK(cxx == doctest::Approx(g.cov[0]).epsilon(0.02));
  CHECK(cyy == doctest::Approx(g.cov[2]).epsilon(0.02));
  CHECK(std::abs(cxy - g.cov[1]) < 0.02 * std::sqrt(g.cov[0] * g.cov[2]));
  // The density is not the base normal, so these checks compare something.
  CHECK(std::abs(g.cov[0] - 1.0) + std::abs(g.mean[0]) > 0.05);
}
