#include "flowgrad/flows/actnorm.hpp"

#include <cmath>
#include <stdexcept>

namespace flowgrad {

template <Scalar T>
ActNorm<T>::ActNorm(Index dim)
    : Bijector<T>(dim),
      b(Tensor<T>(Shape{dim})),
      logs(Tensor<T>(Shape{dim})),
      initialized(Shape{1}) {}

template <Scalar T>
void ActNorm<T>::named_parameters(const std::string& prefix, std::vector<NamedParameter<T>>& out) {
  out.push_back({prefix + "b", &b});
  out.push_back({prefix + "logs", &logs});
}

template <Scalar T>
void ActNorm<T>::named_buffers(const std::string& prefix, std::vector<NamedBuffer<T>>& out) {
  out.push_back({prefix + "initialized", &initialized});
}

template <Scalar T>
void ActNorm<T>::initialize_from(const Tensor<T>& data) {
  if (data.cols() != this->dim() || data.rows() < 2)
    throw std::invalid_argument(this->label() + " initialisation: data of shape " +
                                data.shape().str() + ", expected [n >= 2, " +
                                std::to_string(this->dim()) + "]");
  const double n = static_cast<double>(data.rows());
  for (Index j = 0; j < this->dim(); ++j) {
    double s = 0, s2 = 0;
    for (Index i = 0; i < data.rows(); ++i) s += data(i, j);
    const double m = s / n;
    for (Index i = 0; i < data.rows(); ++i) s2 += (data(i, j) - m) * (data(i, j) - m);
    b.value[j] = static_cast<T>(-m);
    logs.value[j] = static_cast<T>(-std::log(std::sqrt(s2 / n) + 1e-6));
  }
  initialized[0] = T(1);
}

template <Scalar T>
FlowResult<T> ActNorm<T>::forward_impl(const Var<T>& x, const Var<T>& /*context*/) {
  if (this->training() && !is_initialized()) {
    if (x.rows() < 2)
      throw std::invalid_argument(this->label() +
                                  " forward: the initialising batch needs 2 or more rows");
    initialize_from(x.value());
  }
  Tape<T>& t = x.tape();
  const Var<T> lv = t.parameter(logs);
  const Var<T> y = (x + t.parameter(b)) * exp(lv);
  return {y, this->per_sample(sum(lv), x.rows())};
}

template <Scalar T>
FlowResult<T> ActNorm<T>::inverse_impl(const Var<T>& y, const Var<T>& /*context*/) {
  Tape<T>& t = y.tape();
  const Var<T> lv = t.parameter(logs);
  const Var<T> x = y * exp(-lv) - t.parameter(b);
  return {x, this->per_sample(-sum(lv), y.rows())};
}

template class ActNorm<float>;
template class ActNorm<double>;

}  // namespace flowgrad
