#include "flowgrad/flows/spline_coupling.hpp"

#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <utility>

#include "flowgrad/autodiff/ops.hpp"
#include "flowgrad/flows/coupling.hpp"

namespace flowgrad {

void check_spline_config(const SplineCouplingConfig& config, const std::string& layer) {
  if (config.hidden <= 0 || config.hidden_layers < 1)
    throw std::invalid_argument(layer + ": needs hidden width >= 1 and at least one hidden layer");
  if (config.bins < 1 || config.bins > 128)
    throw std::invalid_argument(layer + ": bins must be in 1..128, got " +
                                std::to_string(config.bins));
  // Float models run the spline op with T(tail_bound): a bound finite in double but not in float
  // would pass here and fail at the first use. Both precisions take the float range, so a file
  // loads alike as either.
  if (!(config.tail_bound > 0) || !(config.tail_bound <= std::numeric_limits<float>::max()))
    throw std::invalid_argument(layer + ": tail_bound must be positive and finite in float32");
  if (config.context < 0) throw std::invalid_argument(layer + ": negative context width");
}

void add_spline_settings(const SplineCouplingConfig& config,
                         std::map<std::string, std::string>& settings) {
  char bound[32];
  std::snprintf(bound, sizeof bound, "%.17g", config.tail_bound);
  settings["bins"] = std::to_string(config.bins);
  settings["tail_bound"] = bound;
  settings["hidden"] = std::to_string(config.hidden);
  settings["hidden_layers"] = std::to_string(config.hidden_layers);
  settings["activation"] = to_string(config.activation);
  if (config.context > 0) settings["context"] = std::to_string(config.context);
}

double spline_logit_scale(const SplineCouplingConfig& config) {
  return 1 / std::sqrt(double(config.hidden));
}

template <Scalar T>
SplineCoupling<T>::SplineCoupling(std::vector<int> mask, const SplineCouplingConfig& config,
                                  Generator& gen)
    : Bijector<T>(static_cast<Index>(mask.size())), mask_(std::move(mask)), config_(config) {
  MaskColumns columns = split_mask(mask_, "spline_coupling");
  fixed_ = std::move(columns.fixed);
  changed_ = std::move(columns.changed);
  check_spline_config(config, "spline_coupling");
  // [x1, y2] back to the column order of x.
  order_.resize(mask_.size());
  for (std::size_t p = 0; p < fixed_.size(); ++p)
    order_[static_cast<std::size_t>(fixed_[p])] = static_cast<Index>(p);
  for (std::size_t p = 0; p < changed_.size(); ++p)
    order_[static_cast<std::size_t>(changed_[p])] = static_cast<Index>(fixed_.size() + p);
  const Index width = static_cast<Index>(changed_.size()) * (3 * config.bins - 1);
  std::vector<Index> sizes{static_cast<Index>(fixed_.size()) + config.context};
  for (int l = 0; l < config.hidden_layers; ++l) sizes.push_back(config.hidden);
  sizes.push_back(width);
  net_ = std::make_unique<MLP<T>>(sizes, config.activation, gen, Activation::none);
  net_->layers().back().weight.value.fill(T(0));
  net_->layers().back().bias.value.fill(T(0));
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
  LayerSpec spec{kind(), {{"dim", std::to_string(this->dim())}, {"mask", mask}}, {}};
  add_spline_settings(config_, spec.settings);
  return spec;
}

// y2 = spline(x2; net(x1)) with x1 passed through; the output puts [x1, y2] back in x's order.
template <Scalar T>
FlowResult<T> SplineCoupling<T>::run(const Var<T>& v, const Var<T>& context, bool inverse) {
  const Var<T> v1 = select_columns(v, fixed_);
  const Var<T> params = (*net_)(conditioner_input(v1, context));
  const SplineResult<T> r =
      rational_quadratic_spline(select_columns(v, changed_), params, config_.bins,
                                T(config_.tail_bound), inverse, spline_logit_scale(config_));
  return {select_columns(cat({v1, r.out}), order_), sum(r.log_det, 1)};
}

template <Scalar T>
FlowResult<T> SplineCoupling<T>::forward_impl(const Var<T>& x, const Var<T>& context) {
  return run(x, context, false);
}

template <Scalar T>
FlowResult<T> SplineCoupling<T>::inverse_impl(const Var<T>& y, const Var<T>& context) {
  return run(y, context, true);
}

template class SplineCoupling<float>;
template class SplineCoupling<double>;

}  // namespace flowgrad
