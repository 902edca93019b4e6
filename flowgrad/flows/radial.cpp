#include "flowgrad/flows/radial.hpp"

#include <cmath>

namespace flowgrad {

namespace {
double softplus(double a) { return a > 0 ? a + std::log1p(std::exp(-a)) : std::log1p(std::exp(a)); }
}  // namespace

template <Scalar T>
Radial<T>::Radial(Index dim, Generator& gen) : Bijector<T>(dim) {
  const T bound = T(1) / std::sqrt(static_cast<T>(dim));
  z0 = Parameter<T>(gen.uniform<T>(Shape{dim}, -bound, bound));
  alpha_raw = Parameter<T>(gen.uniform<T>(Shape{1}, -bound, bound));
  beta_raw = Parameter<T>(gen.uniform<T>(Shape{1}, -bound, bound));
}

template <Scalar T>
void Radial<T>::named_parameters(const std::string& prefix, std::vector<NamedParameter<T>>& out) {
  out.push_back({prefix + "z0", &z0});
  out.push_back({prefix + "alpha_raw", &alpha_raw});
  out.push_back({prefix + "beta_raw", &beta_raw});
}

template <Scalar T>
FlowResult<T> Radial<T>::forward_impl(const Var<T>& x, const Var<T>& /*context*/) {
  Tape<T>& t = x.tape();
  const Var<T> alpha = softplus(t.parameter(alpha_raw));
  const Var<T> beta = softplus(t.parameter(beta_raw)) - alpha;
  const Var<T> diff = x - t.parameter(z0);
  const Var<T> r = sqrt(sum(square(diff), 1));  // [batch, 1]
  const Var<T> h = pow(alpha + r, T(-1));
  const Var<T> bh = beta * h;
  const Var<T> y = x + bh * diff;
  const T d1 = static_cast<T>(this->dim() - 1);
  const Var<T> log_det = log(bh + T(1)) * d1 + log(alpha * beta * square(h) + T(1));
  return {y, log_det};
}

template <Scalar T>
FlowResult<T> Radial<T>::inverse_impl(const Var<T>& yv, const Var<T>& /*context*/) {
  const Index d = this->dim();
  const double alpha = softplus(alpha_raw.value[0]);
  const double beta = softplus(beta_raw.value[0]) - alpha;
  const Tensor<T>& y = yv.value();
  const Index n = y.rows();
  Tensor<T> x(Shape{n, d}), log_det(Shape{n, 1});
  for (Index i = 0; i < n; ++i) {
    double rp2 = 0;
    for (Index j = 0; j < d; ++j)
      rp2 += (double(y(i, j)) - z0.value[j]) * (double(y(i, j)) - z0.value[j]);
    const double rp = std::sqrt(rp2);
    // r^2 + (alpha + beta - r') r - alpha r' = 0; its non-negative root, written to avoid
    // cancellation when the linear coefficient is negative.
    const double p = alpha + beta - rp;
    const double disc = std::sqrt(p * p + 4 * alpha * rp);
    const double r = p <= 0 ? (disc - p) / 2 : (2 * alpha * rp) / (p + disc);
    const double h = 1 / (alpha + r);
    const double scale = 1 + beta * h;  // y - z0 = scale (x - z0)
    for (Index j = 0; j < d; ++j)
      x(i, j) = static_cast<T>(z0.value[j] + (double(y(i, j)) - z0.value[j]) / scale);
    log_det[i] =
        static_cast<T>(-(double(d - 1) * std::log(scale) + std::log1p(alpha * beta * h * h)));
  }
  Tape<T>& t = yv.tape();
  return {t.constant(x), t.constant(log_det)};
}

template class Radial<float>;
template class Radial<double>;

}  // namespace flowgrad
