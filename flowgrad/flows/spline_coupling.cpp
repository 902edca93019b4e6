#include "flowgrad/flows/spline_coupling.hpp"

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <utility>

#include "flowgrad/autodiff/ops.hpp"
#include "flowgrad/flows/coupling.hpp"

namespace flowgrad {

template <Scalar T>
SplineCoupling<T>::SplineCoupling(std::vector<int> mask, const SplineCouplingConfig& config,
                                  Generator& gen)
    : Bijector<T>(static_cast<Index>(mask.size())), mask_(std::move(mask)), config_(config) {
  MaskColumns columns = split_mask(mask_, "spline_coupling");
  fixed_ = std::move(columns.fixed);
  changed_ = std::move(columns.changed);
  if (config.hidden <= 0 || config.hidden_layers < 1)
    throw std::invalid_argument(
        "spline_coupling: needs hidden width >= 1 and at least one hidden layer");
  if (config.bins < 1 || config.bins > 128)
    throw std::invalid_argument("spline_coupling: bins must be in 1..128, got " +
                                std::to_string(config.bins));
  if (!(config.tail_bound > 0) || !std::isfinite(config.tail_bound))
    throw std::invalid_argument("spline_coupling: tail_bound must be positive and finite");
  // [x1, y2] back to the column order of x.
  order_.resize(mask_.size());
  for (std::size_t p = 0; p < fixed_.size(); ++p)
    order_[static_cast<std::size_t>(fixed_[p])] = static_cast<Index>(p);
  for (std::size_t p = 0; p < changed_.size(); ++p)
    order_[static_cast<std::size_t>(changed_[p])] = static_cast<Index>(fixed_.size() + p);
  const Index K = config.bins, P = 3 * K - 1, width = static_cast<Index>(changed_.size()) * P;
  std::vector<Index> sizes{static_cast<Index>(fixed_.size())};
  for (int l = 0; l < config.hidden_layers; ++l) sizes.push_back(config.hidden);
  sizes.push_back(width);
  net_ = std::make_unique<MLP<T>>(sizes, config.activation, gen, Activation::none);
  net_->layers().back().weight.value.fill(T(0));
  net_->layers().back().bias.value.fill(T(0));
  logit_scale_ = Tensor<T>(Shape{1, width}, T(1));
  const T inv_sqrt_h = T(1 / std::sqrt(double(config.hidden)));
  for (Index j = 0; j < width; ++j)
    if (j % P < 2 * K) logit_scale_[j] = inv_sqrt_h;
}

template <Scalar T>
void SplineCoupling<T>::named_parameters(const std::string& prefix,
                                         std::vector<NamedParameter<T>>& out) {
  net_->named_parameters(prefix + "net.", out);
}

template <Scalar T>
LayerSpec SplineCoupling<T>::spec() const {
  std::string mask;
  for (std::size_t j = 0; j < mask_.size(); ++j) {
    if (j) mask.push_back(',');
    mask.push_back(mask_[j] ? '1' : '0');
  }
  char bound[32];
  std::snprintf(bound, sizeof bound, "%.17g", config_.tail_bound);
  return {kind(),
          {{"dim", std::to_string(this->dim())},
           {"mask", mask},
           {"bins", std::to_string(config_.bins)},
           {"tail_bound", bound},
           {"hidden", std::to_string(config_.hidden)},
           {"hidden_layers", std::to_string(config_.hidden_layers)},
           {"activation", to_string(config_.activation)}},
          {}};
}

// y2 = spline(x2; net(x1)) with x1 passed through; the output puts [x1, y2] back in x's order.
template <Scalar T>
FlowResult<T> SplineCoupling<T>::run(const Var<T>& v, bool inverse) {
  const Var<T> v1 = select_columns(v, fixed_);
  const Var<T> params = mul((*net_)(v1), v.tape().constant(logit_scale_));
  const SplineResult<T> r = rational_quadratic_spline(select_columns(v, changed_), params,
                                                      config_.bins, T(config_.tail_bound), inverse);
  return {select_columns(cat({v1, r.out}), order_), sum(r.log_det, 1)};
}

template <Scalar T>
FlowResult<T> SplineCoupling<T>::forward_impl(const Var<T>& x) {
  return run(x, false);
}

template <Scalar T>
FlowResult<T> SplineCoupling<T>::inverse_impl(const Var<T>& y) {
  return run(y, true);
}

template class SplineCoupling<float>;
template class SplineCoupling<double>;

}  // namespace flowgrad
