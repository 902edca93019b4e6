#include "flowgrad/flows/planar.hpp"

#include <cmath>
#include <stdexcept>
#include <vector>

namespace flowgrad {

template <Scalar T>
Planar<T>::Planar(Index dim, Generator& gen) : Bijector<T>(dim) {
  const T bound = T(1) / std::sqrt(static_cast<T>(dim));
  w = Parameter<T>(gen.uniform<T>(Shape{dim}, -bound, bound));
  u = Parameter<T>(gen.uniform<T>(Shape{dim}, -bound, bound));
  b = Parameter<T>(gen.uniform<T>(Shape{1}, -bound, bound));
}

template <Scalar T>
void Planar<T>::named_parameters(const std::string& prefix, std::vector<NamedParameter<T>>& out) {
  out.push_back({prefix + "w", &w});
  out.push_back({prefix + "u", &u});
  out.push_back({prefix + "b", &b});
}

template <Scalar T>
FlowResult<T> Planar<T>::forward_impl(const Var<T>& x, const Var<T>& /*context*/) {
  Tape<T>& t = x.tape();
  const Var<T> wv = t.parameter(w), uv = t.parameter(u), bv = t.parameter(b);
  const Var<T> wu = sum(wv * uv);
  const Var<T> m = softplus(wu) - T(1);  // = w.u_hat
  const Var<T> u_hat = uv + (m - wu) * wv / sum(square(wv));
  const Var<T> h = tanh(matmul(x, wv, {false, true, false}) + bv);  // [batch, 1]
  const Var<T> y = x + h * u_hat;
  const Var<T> log_det = log(abs(affine(square(h), T(-1), T(1)) * m + T(1)));
  return {y, log_det};
}

template <Scalar T>
FlowResult<T> Planar<T>::inverse_impl(const Var<T>& yv, const Var<T>& /*context*/) {
  const Index d = this->dim();
  std::vector<double> wd(static_cast<std::size_t>(d)), uh(static_cast<std::size_t>(d));
  double wu = 0, ww = 0;
  for (Index j = 0; j < d; ++j) {
    wu += double(w.value[j]) * u.value[j];
    ww += double(w.value[j]) * w.value[j];
  }
  const double m = -1 + (wu > 0 ? wu + std::log1p(std::exp(-wu)) : std::log1p(std::exp(wu)));
  for (Index j = 0; j < d; ++j) {
    wd[static_cast<std::size_t>(j)] = w.value[j];
    uh[static_cast<std::size_t>(j)] = u.value[j] + (m - wu) * w.value[j] / ww;
  }
  const double bias = b.value[0];
  const Tensor<T>& y = yv.value();
  const Index n = y.rows();
  Tensor<T> x(Shape{n, d}), log_det(Shape{n, 1});
  for (Index i = 0; i < n; ++i) {
    double c = 0;
    for (Index j = 0; j < d; ++j) c += wd[static_cast<std::size_t>(j)] * y(i, j);
    // g(a) = a + m tanh(a + b) - c is increasing (g' = 1 + m (1 - tanh^2) > 0 as m > -1), and
    // |m tanh| <= |m| puts the root in [c - |m|, c + |m|].
    double lo = c - std::abs(m) - 1e-12, hi = c + std::abs(m) + 1e-12;
    double a = c;
    for (int it = 0; it < 200; ++it) {
      const double th = std::tanh(a + bias);
      const double g = a + m * th - c;
      if (g > 0)
        hi = a;
      else
        lo = a;
      const double slope = 1 + m * (1 - th * th);
      double next = a - g / slope;
      // Newton can overshoot where the slope is near 0; bisect then.
      if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
      if (std::abs(next - a) <= 1e-15 * (1 + std::abs(a)) || hi - lo <= 1e-15 * (1 + std::abs(a))) {
        a = next;
        break;
      }
      a = next;
    }
    const double th = std::tanh(a + bias);
    for (Index j = 0; j < d; ++j)
      x(i, j) = static_cast<T>(y(i, j) - uh[static_cast<std::size_t>(j)] * th);
    log_det[i] = static_cast<T>(-std::log(std::abs(1 + m * (1 - th * th))));
  }
  Tape<T>& t = yv.tape();
  return {t.constant(x), t.constant(log_det)};
}

template class Planar<float>;
template class Planar<double>;

}  // namespace flowgrad
