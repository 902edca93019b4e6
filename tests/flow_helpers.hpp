#pragma once
// Brute-force references for the flow tests.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "flowgrad/flows/bijector.hpp"
#include "flowgrad/tensor/random.hpp"

namespace flowgrad::testing {

// log|det A| of a small dense matrix by Gaussian elimination with partial pivoting.
inline double log_abs_det(std::vector<double> a, Index d) {
  double log_det = 0;
  for (Index c = 0; c < d; ++c) {
    Index p = c;
    for (Index r = c + 1; r < d; ++r)
      if (std::abs(a[static_cast<std::size_t>(r * d + c)]) >
          std::abs(a[static_cast<std::size_t>(p * d + c)]))
        p = r;
    if (p != c)
      for (Index k = 0; k < d; ++k)
        std::swap(a[static_cast<std::size_t>(c * d + k)], a[static_cast<std::size_t>(p * d + k)]);
    const double pivot = a[static_cast<std::size_t>(c * d + c)];
    log_det += std::log(std::abs(pivot));
    for (Index r = c + 1; r < d; ++r) {
      const double f = a[static_cast<std::size_t>(r * d + c)] / pivot;
      for (Index k = c; k < d; ++k)
        a[static_cast<std::size_t>(r * d + k)] -= f * a[static_cast<std::size_t>(c * d + k)];
    }
  }
  return log_det;
}

// Every parameter drawn from N(0, scale^2): builders start some layers at zero (a fixed map), and
// a test of a layer's structure needs each part of it to matter.
template <Scalar T>
void randomize_parameters(Module<T>& m, Generator& gen, double scale) {
  for (Parameter<T>* p : m.parameters())
    for (Index k = 0; k < p->value.numel(); ++k) p->value[k] = T(scale * gen.normal());
}

// The mass of a 2-D density on [-half, half]^2 by the midpoint rule on an n x n grid, one row
// of the grid per log_prob call.
template <class Model>
double mass_2d(Model& model, double half = 12, Index n = 400) {
  const double h = 2 * half / static_cast<double>(n);
  double mass = 0;
  for (Index i = 0; i < n; ++i) {
    Tensor<double> row(Shape{n, 2});
    for (Index j = 0; j < n; ++j) {
      row(j, 0) = -half + (static_cast<double>(i) + 0.5) * h;
      row(j, 1) = -half + (static_cast<double>(j) + 0.5) * h;
    }
    const auto lp = model.log_prob(row);
    for (Index j = 0; j < n; ++j) mass += std::exp(lp[j]) * h * h;
  }
  return mass;
}

// Runs a bijector forward on one row, values only.
inline Tensor<double> forward_row(Bijector<double>& f, const Tensor<double>& row) {
  Tape<double> t;
  NoGradGuard<double> g(t);
  return f.forward(t.constant(row)).out.value();
}

// log|det dy/dx| at each row of x from a central-difference Jacobian.
inline std::vector<double> brute_force_log_det(Bijector<double>& f, const Tensor<double>& x,
                                               double h = 1e-6) {
  const Index d = x.cols();
  std::vector<double> out;
  for (Index i = 0; i < x.rows(); ++i) {
    std::vector<double> jac(static_cast<std::size_t>(d * d));
    for (Index k = 0; k < d; ++k) {
      Tensor<double> up(Shape{1, d}), down(Shape{1, d});
      for (Index j = 0; j < d; ++j) up[j] = down[j] = x(i, j);
      up[k] += h;
      down[k] -= h;
      const auto yu = forward_row(f, up), yd = forward_row(f, down);
      for (Index r = 0; r < d; ++r)
        jac[static_cast<std::size_t>(r * d + k)] = (yu[r] - yd[r]) / (2 * h);
    }
    out.push_back(log_abs_det(jac, d));
  }
  return out;
}

// forward's log-det against the brute-force Jacobian (relative to 1 + |log det|),
// inverse(forward(x)) against x, and the inverse's log-det against minus the forward's, in float64.
inline void check_bijector(Bijector<double>& f, const Tensor<double>& x, double logdet_tol = 1e-6,
                           double inverse_tol = 1e-9, double inverse_logdet_tol = 1e-7) {
  Tape<double> t;
  NoGradGuard<double> guard(t);
  const FlowResult<double> fwd = f.forward(t.constant(x));
  const auto brute = brute_force_log_det(f, x);
  for (Index i = 0; i < x.rows(); ++i) {
    CAPTURE(i);
    const double b = brute[static_cast<std::size_t>(i)];
    CHECK(std::abs(fwd.log_det.value()[i] - b) < logdet_tol * (1 + std::abs(b)));
  }
  const FlowResult<double> inv = f.inverse(fwd.out);
  double worst = 0, worst_ld = 0;
  for (Index k = 0; k < x.numel(); ++k)
    worst = std::max(worst, std::abs(inv.out.value()[k] - x[k]));
  for (Index i = 0; i < x.rows(); ++i)
    worst_ld = std::max(worst_ld, std::abs(inv.log_det.value()[i] + fwd.log_det.value()[i]));
  CHECK(worst < inverse_tol);
  CHECK(worst_ld < inverse_logdet_tol);
}

}  // namespace flowgrad::testing
