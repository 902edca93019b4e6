// U1..U4 (Rezende & Mohamed 2015, Table 1) plus the soft wall W of docs/design.md §6, on the tape.
#include "energies.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <stdexcept>

namespace train2d {

namespace {

using flowgrad::affine;
using flowgrad::Shape;
using flowgrad::Tape;
using flowgrad::Tensor;

// -((x - mu) / s)^2 / 2 as an affine map then a square: (x - mu) / s = x / s - mu / s.
template <flowgrad::Scalar T>
Var<T> neg_half_sq(const Var<T>& x, double mu, double s) {
  return flowgrad::square(affine(x, T(1 / s), T(-mu / s))) * T(-0.5);
}

// w1 = sin(2 pi z1 / 4).
template <flowgrad::Scalar T>
Var<T> w1(const Var<T>& z1) {
  return flowgrad::sin(z1 * T(std::numbers::pi / 2));
}

// W(z) = 0.5 (max(|z1| - 4, 0) / 0.2)^2 = 0.5 relu(5 |z1| - 20)^2.
template <flowgrad::Scalar T>
Var<T> wall(const Var<T>& z1) {
  return flowgrad::square(flowgrad::relu(affine(flowgrad::abs(z1), T(5), T(-20)))) * T(0.5);
}

void check_which(int which) {
  if (which < 1 || which > 4)
    throw std::invalid_argument("energy: which must be 1..4 (U1..U4), got " +
                                std::to_string(which));
}

}  // namespace

template <flowgrad::Scalar T>
Var<T> energy(int which, const Var<T>& z) {
  check_which(which);
  if (z.cols() != 2)
    throw std::invalid_argument("energy: z must be [n, 2], got " + z.shape().str());
  const Var<T> z1 = flowgrad::narrow(z, 0, 1);
  const Var<T> z2 = flowgrad::narrow(z, 1, 1);
  Var<T> u;
  switch (which) {
    case 1: {
      // ((|z| - 2) / 0.4)^2 / 2 - log(exp(-((z1 - 2)/0.6)^2 / 2) + exp(-((z1 + 2)/0.6)^2 / 2)).
      const Var<T> r = flowgrad::sqrt(flowgrad::square(z1) + flowgrad::square(z2));
      u = -neg_half_sq(r, 2.0, 0.4) -
          flowgrad::logaddexp(neg_half_sq(z1, 2.0, 0.6), neg_half_sq(z1, -2.0, 0.6));
      break;
    }
    case 2: {
      // ((z2 - w1) / 0.4)^2 / 2.
      u = -neg_half_sq(z2 - w1(z1), 0.0, 0.4);
      break;
    }
    case 3: {
      // -log(exp(-((z2 - w1)/0.35)^2 / 2) + exp(-((z2 - w1 + w2)/0.35)^2 / 2)),
      // w2 = 3 exp(-((z1 - 1)/0.6)^2 / 2).
      const Var<T> d = z2 - w1(z1);
      const Var<T> w2 = flowgrad::exp(neg_half_sq(z1, 1.0, 0.6)) * T(3);
      u = -flowgrad::logaddexp(neg_half_sq(d, 0.0, 0.35), neg_half_sq(d + w2, 0.0, 0.35));
      break;
    }
    default: {
      // -log(exp(-((z2 - w1)/0.4)^2 / 2) + exp(-((z2 - w1 + w3)/0.35)^2 / 2)),
      // w3 = 3 sigmoid((z1 - 1)/0.3).
      const Var<T> d = z2 - w1(z1);
      const Var<T> w3 = flowgrad::sigmoid(affine(z1, T(1 / 0.3), T(-1 / 0.3))) * T(3);
      u = -flowgrad::logaddexp(neg_half_sq(d, 0.0, 0.4), neg_half_sq(d + w3, 0.0, 0.35));
      break;
    }
  }
  return u + wall(z1);
}

template Var<float> energy(int, const Var<float>&);
template Var<double> energy(int, const Var<double>&);

int energy_from_name(const std::string& name) {
  if (name.size() == 2 && (name[0] == 'U' || name[0] == 'u') && name[1] >= '1' && name[1] <= '4')
    return name[1] - '0';
  throw std::invalid_argument("unknown energy '" + name + "' (known: U1, U2, U3, U4)");
}

// z1: the wall is 0.5 ((|z1| - 4)/0.2)^2, 50 at |z1| = 6, so every energy lives in [-6, 6].
// z2, with a margin of 7 standard deviations or more beyond each mode:
//   U1: a ring of radius 2 and width 0.4, |z| <= 2 + 7 * 0.4 = 4.8 -> [-5, 5];
//   U2: z2 ~ w1 +- 0.4, w1 in [-1, 1] -> [-4, 4];
//   U3: modes at w1 and w1 - w2 (w2 in (0, 3] peaks at z1 = 1, where w1 = 1: w1 - w2 >= -2),
//       width 0.35 -> [-5, 4];
//   U4: modes at w1 (width 0.4) and w1 - w3 (w3 in (0, 3), w1 - w3 >= about -4), width 0.35
//       -> [-7, 4].
Box energy_box(int which) {
  check_which(which);
  switch (which) {
    case 1:
      return {-6, 6, -5, 5};
    case 2:
      return {-6, 6, -4, 4};
    case 3:
      return {-6, 6, -5, 4};
    default:
      return {-6, 6, -7, 4};
  }
}

double log_partition(int which, Index n) {
  check_which(which);
  if (n < 1) throw std::invalid_argument("log_partition: n must be >= 1, got " + std::to_string(n));
  const Box b = energy_box(which);
  const double dx = (b.x1 - b.x0) / static_cast<double>(n);
  const double dy = (b.y1 - b.y0) / static_cast<double>(n);

  Tape<double> tape;
  flowgrad::NoGradGuard<double> no_grad(tape);
  // Grid rows (fixed z2) in batches of about 64k points; a running log-sum-exp of -U over the
  // cells: total = exp(m) * s with m the largest -U so far.
  const Index rows_per_batch = std::max<Index>(1, (Index{1} << 16) / n);
  double m = -std::numeric_limits<double>::infinity(), s = 0;
  Tensor<double> z;
  for (Index i0 = 0; i0 < n; i0 += rows_per_batch) {
    const Index rows = std::min(rows_per_batch, n - i0);
    z.resize(Shape{rows * n, 2});
    for (Index i = 0; i < rows; ++i) {
      const double y = b.y0 + (static_cast<double>(i0 + i) + 0.5) * dy;
      for (Index j = 0; j < n; ++j) {
        z(i * n + j, 0) = b.x0 + (static_cast<double>(j) + 0.5) * dx;
        z(i * n + j, 1) = y;
      }
    }
    tape.reset();
    const Tensor<double>& u = energy(which, tape.constant(z)).value();
    double batch_max = -std::numeric_limits<double>::infinity();
    for (Index k = 0; k < u.numel(); ++k) batch_max = std::max(batch_max, -u[k]);
    if (batch_max > m) {
      s *= std::exp(m - batch_max);  // exp(-inf) = 0 on the first batch
      m = batch_max;
    }
    for (Index k = 0; k < u.numel(); ++k) s += std::exp(-u[k] - m);
  }
  return m + std::log(s) + std::log(dx * dy);
}

}  // namespace train2d
