#include "conditional_toy.hpp"

#include <cmath>
#include <numbers>

namespace train2d {

namespace {
constexpr double kShift = 1.5, kMinor = 0.3;

// x = mu(c) + R(theta) (z0, kMinor z1).
void place(double c, double z0, double z1, float* x) {
  const double th = std::numbers::pi / 2 * c;
  const double a = z0, b = kMinor * z1;
  x[0] = float(kShift * c + std::cos(th) * a - std::sin(th) * b);
  x[1] = float(std::sin(th) * a + std::cos(th) * b);
}
}  // namespace

flowgrad::TensorF sample_rotating(flowgrad::Index n, flowgrad::Generator& gen) {
  flowgrad::TensorF rows(flowgrad::Shape{n, 3});
  // Per row: c, then z0, z1, in that order.
  for (flowgrad::Index i = 0; i < n; ++i) {
    const double c = 2 * gen.uniform() - 1;
    const double z0 = gen.normal(), z1 = gen.normal();
    place(c, z0, z1, &rows(i, 0));
    rows(i, 2) = float(c);
  }
  return rows;
}

flowgrad::TensorF sample_rotating_at(double c, flowgrad::Index n, flowgrad::Generator& gen) {
  flowgrad::TensorF x(flowgrad::Shape{n, 2});
  for (flowgrad::Index i = 0; i < n; ++i) {
    const double z0 = gen.normal(), z1 = gen.normal();
    place(c, z0, z1, &x(i, 0));
  }
  return x;
}

double rotating_log_density(double x0, double x1, double c) {
  // Rotate x - mu(c) back by -theta: (a, b) = (z0, kMinor z1).
  const double th = std::numbers::pi / 2 * c;
  const double u = x0 - kShift * c, v = x1;
  const double a = std::cos(th) * u + std::sin(th) * v;
  const double b = -std::sin(th) * u + std::cos(th) * v;
  return -0.5 * (a * a + b * b / (kMinor * kMinor)) - std::log(2 * std::numbers::pi * kMinor);
}

double rotating_nll(const flowgrad::TensorF& rows) {
  double total = 0;
  for (flowgrad::Index i = 0; i < rows.rows(); ++i)
    total -= rotating_log_density(rows(i, 0), rows(i, 1), rows(i, 2));
  return total / static_cast<double>(rows.rows());
}

}  // namespace train2d
