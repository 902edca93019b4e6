#include "flowgrad/flows/lu_linear.hpp"

#include <cmath>

namespace flowgrad {

namespace {

double softplus_d(double a) {
  return a > 0 ? a + std::log1p(std::exp(-a)) : std::log1p(std::exp(a));
}

}  // namespace

template <Scalar T>
LULinear<T>::LULinear(Index dim)
    : Bijector<T>(dim),
      lower(Tensor<T>(Shape{dim, dim})),
      upper(Tensor<T>(Shape{dim, dim})),
      u_diag(Tensor<T>(Shape{dim}, static_cast<T>(std::log(std::expm1(1.0 - min_diag))))),
      bias(Tensor<T>(Shape{dim})),
      strict_lower_(Shape{dim, dim}),
      strict_upper_(Shape{dim, dim}),
      eye_(Shape{dim, dim}) {
  for (Index i = 0; i < dim; ++i)
    for (Index j = 0; j < dim; ++j) {
      strict_lower_(i, j) = i > j ? T(1) : T(0);
      strict_upper_(i, j) = i < j ? T(1) : T(0);
      eye_(i, j) = i == j ? T(1) : T(0);
    }
}

template <Scalar T>
void LULinear<T>::named_parameters(const std::string& prefix, std::vector<NamedParameter<T>>& out) {
  out.push_back({prefix + "lower", &lower});
  out.push_back({prefix + "upper", &upper});
  out.push_back({prefix + "u_diag", &u_diag});
  out.push_back({prefix + "bias", &bias});
}

template <Scalar T>
FlowResult<T> LULinear<T>::forward_impl(const Var<T>& x, const Var<T>& /*context*/) {
  Tape<T>& t = x.tape();
  const Var<T> eye = t.constant(eye_);
  const Var<T> s = softplus(t.parameter(u_diag)) + static_cast<T>(min_diag);  // [dim]
  const Var<T> l = t.parameter(lower) * t.constant(strict_lower_) + eye;
  // eye * s puts s on the diagonal: the row s broadcasts over the rows of eye.
  const Var<T> u = t.parameter(upper) * t.constant(strict_upper_) + eye * s;
  const Var<T> w = matmul(l, u);
  const Var<T> y = linear(x, w, t.parameter(bias));
  return {y, this->per_sample(sum(log(s)), x.rows())};
}

template <Scalar T>
void LULinear<T>::factors(std::vector<double>& l, std::vector<double>& u) const {
  const Index d = this->dim();
  l.assign(static_cast<std::size_t>(d * d), 0.0);
  u.assign(static_cast<std::size_t>(d * d), 0.0);
  for (Index i = 0; i < d; ++i)
    for (Index j = 0; j < d; ++j) {
      const auto k = static_cast<std::size_t>(i * d + j);
      if (i > j) l[k] = lower.value(i, j);
      if (i == j) {
        l[k] = 1;
        u[k] = softplus_d(u_diag.value[i]) + min_diag;
      }
      if (i < j) u[k] = upper.value(i, j);
    }
}

template <Scalar T>
std::vector<double> LULinear<T>::weight() const {
  std::vector<double> l, u;
  factors(l, u);
  const auto d = static_cast<std::size_t>(this->dim());
  std::vector<double> w(d * d, 0.0);
  for (std::size_t i = 0; i < d; ++i)
    for (std::size_t k = 0; k < d; ++k)
      for (std::size_t j = 0; j < d; ++j) w[i * d + j] += l[i * d + k] * u[k * d + j];
  return w;
}

// x W^T = y - bias with W = L U: w L^T = y - bias (L unit lower), then x U^T = w (U upper), two
// triangular solves on the tape, so the inverse is differentiable too.
template <Scalar T>
FlowResult<T> LULinear<T>::inverse_impl(const Var<T>& y, const Var<T>& /*context*/) {
  Tape<T>& t = y.tape();
  const Var<T> eye = t.constant(eye_);
  const Var<T> s = softplus(t.parameter(u_diag)) + static_cast<T>(min_diag);
  const Var<T> l = t.parameter(lower) * t.constant(strict_lower_) + eye;
  const Var<T> u = t.parameter(upper) * t.constant(strict_upper_) + eye * s;
  const Var<T> w = solve_triangular(l, y - t.parameter(bias), true, true);
  return {solve_triangular(u, w, false), this->per_sample(-sum(log(s)), y.rows())};
}

template class LULinear<float>;
template class LULinear<double>;

}  // namespace flowgrad
