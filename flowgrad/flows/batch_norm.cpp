#include "flowgrad/flows/batch_norm.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>

namespace flowgrad {

template <Scalar T>
BatchNorm<T>::BatchNorm(Index dim, double momentum, double eps)
    : Bijector<T>(dim),
      log_gamma(Tensor<T>(Shape{dim})),
      beta(Tensor<T>(Shape{dim})),
      running_mean(Shape{dim}),
      running_var(Shape{dim}, T(1)),
      num_batches_tracked(Shape{1}),
      momentum_(static_cast<T>(momentum)),
      eps_(static_cast<T>(eps)),
      momentum_setting_(momentum),
      eps_setting_(eps) {
  if (!(momentum > 0 && momentum <= 1) || !(eps > 0))
    throw std::invalid_argument("batch_norm: needs momentum in (0, 1] and eps > 0");
}

template <Scalar T>
void BatchNorm<T>::named_parameters(const std::string& prefix,
                                    std::vector<NamedParameter<T>>& out) {
  out.push_back({prefix + "log_gamma", &log_gamma});
  out.push_back({prefix + "beta", &beta});
}

template <Scalar T>
void BatchNorm<T>::named_buffers(const std::string& prefix, std::vector<NamedBuffer<T>>& out) {
  out.push_back({prefix + "running_mean", &running_mean, true});
  out.push_back({prefix + "running_var", &running_var, true});
  out.push_back({prefix + "num_batches_tracked", &num_batches_tracked});
}

template <Scalar T>
LayerSpec BatchNorm<T>::spec() const {
  // The shortest text that reads back as the same double ("0.1", not 0.10000000000000001).
  auto text = [](double x) {
    char buf[32];
    return std::string(buf, std::to_chars(buf, buf + sizeof buf, x).ptr);
  };
  return {kind(),
          {{"dim", std::to_string(this->dim())},
           {"momentum", text(momentum_setting_)},
           {"eps", text(eps_setting_)}},
          {}};
}

template <Scalar T>
FlowResult<T> BatchNorm<T>::forward_impl(const Var<T>& x, const Var<T>& /*context*/) {
  Tape<T>& t = x.tape();
  const Index n = x.rows();
  Var<T> mean_v, var_v;
  if (this->training()) {
    if (n < 2)
      throw std::invalid_argument(this->label() +
                                  " forward: training mode needs a batch of 2 or more");
    mean_v = mean(x, 0);
    var_v = mean(square(x - mean_v), 0);
    const Tensor<T>& bm = mean_v.value();
    const Tensor<T>& bv = var_v.value();
    for (Index j = 0; j < this->dim(); ++j) {
      running_mean[j] = (1 - momentum_) * running_mean[j] + momentum_ * bm[j];
      running_var[j] = (1 - momentum_) * running_var[j] + momentum_ * bv[j];
    }
    num_batches_tracked[0] += 1;
  } else {
    mean_v = t.constant(running_mean);
    var_v = t.constant(running_var);
  }
  const Var<T> lg = t.parameter(log_gamma);
  const Var<T> var_eps = var_v + eps_;
  const Var<T> y = (x - mean_v) * pow(var_eps, T(-0.5)) * exp(lg) + t.parameter(beta);
  const Var<T> log_det = sum(lg - log(var_eps) * T(0.5));
  return {y, this->per_sample(log_det, n)};
}

template <Scalar T>
FlowResult<T> BatchNorm<T>::inverse_impl(const Var<T>& y, const Var<T>& /*context*/) {
  if (!has_statistics())
    throw std::logic_error(
        this->label() +
        " inverse: no running statistics yet; train it, or call set_statistics() first");
  Tape<T>& t = y.tape();
  const Var<T> lg = t.parameter(log_gamma);
  const Var<T> var_eps = t.constant(running_var) + eps_;
  const Var<T> x = (y - t.parameter(beta)) * exp(-lg) * sqrt(var_eps) + t.constant(running_mean);
  const Var<T> log_det = sum(log(var_eps) * T(0.5) - lg);
  return {x, this->per_sample(log_det, y.rows())};
}

template <Scalar T>
void BatchNorm<T>::set_statistics(const Tensor<T>& data) {
  if (data.cols() != this->dim() || data.rows() < 2)
    throw std::invalid_argument(this->label() + " set_statistics: data of shape " +
                                data.shape().str() + ", expected [n >= 2, " +
                                std::to_string(this->dim()) + "]");
  for (Index j = 0; j < this->dim(); ++j) {
    double s = 0, s2 = 0;
    for (Index i = 0; i < data.rows(); ++i) s += data(i, j);
    const double m = s / static_cast<double>(data.rows());
    for (Index i = 0; i < data.rows(); ++i) s2 += (data(i, j) - m) * (data(i, j) - m);
    running_mean[j] = static_cast<T>(m);
    running_var[j] = static_cast<T>(s2 / static_cast<double>(data.rows()));
  }
  num_batches_tracked[0] = std::max(num_batches_tracked[0], T(1));
}

template class BatchNorm<float>;
template class BatchNorm<double>;

}  // namespace flowgrad
