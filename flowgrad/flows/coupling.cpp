#include "flowgrad/flows/coupling.hpp"

#include <stdexcept>
#include <utility>

namespace flowgrad {

template <Scalar T>
std::vector<int> AffineCoupling<T>::half_mask(Index dim, int parity) {
  if (dim < 2)
    throw std::invalid_argument("affine_coupling: needs dimension >= 2, got " +
                                std::to_string(dim));
  std::vector<int> mask(static_cast<std::size_t>(dim));
  for (Index j = 0; j < dim; ++j)
    mask[static_cast<std::size_t>(j)] = ((j < dim / 2) == (parity % 2 == 0)) ? 1 : 0;
  return mask;
}

MaskColumns split_mask(const std::vector<int>& mask, const std::string& layer) {
  MaskColumns c;
  for (std::size_t j = 0; j < mask.size(); ++j) {
    if (mask[j] != 0 && mask[j] != 1)
      throw std::invalid_argument(layer + ": mask entries must be 0 or 1");
    (mask[j] ? c.fixed : c.changed).push_back(static_cast<Index>(j));
  }
  if (c.fixed.empty() || c.changed.empty())
    throw std::invalid_argument(layer + ": the mask must fix some columns and change others");
  return c;
}

template <Scalar T>
AffineCoupling<T>::AffineCoupling(std::vector<int> mask, const CouplingConfig& config,
                                  Generator& gen)
    : Bijector<T>(static_cast<Index>(mask.size())), mask_(std::move(mask)), config_(config) {
  MaskColumns columns = split_mask(mask_, "affine_coupling");
  fixed_ = std::move(columns.fixed);
  changed_ = std::move(columns.changed);
  if (config.hidden <= 0 || config.hidden_layers < 1)
    throw std::invalid_argument(
        "affine_coupling: needs hidden width >= 1 and at least one hidden layer");
  if (config.context < 0) throw std::invalid_argument("affine_coupling: negative context width");
  std::vector<Index> sizes{static_cast<Index>(fixed_.size()) + config.context};
  for (int l = 0; l < config.hidden_layers; ++l) sizes.push_back(config.hidden);
  sizes.push_back(static_cast<Index>(changed_.size()));
  s_ = std::make_unique<MLP<T>>(sizes, config.activation, gen, Activation::tanh);
  t_ = std::make_unique<MLP<T>>(sizes, config.activation, gen, Activation::none);
}

template <Scalar T>
void AffineCoupling<T>::named_parameters(const std::string& prefix,
                                         std::vector<NamedParameter<T>>& out) {
  s_->named_parameters(prefix + "s.", out);
  t_->named_parameters(prefix + "t.", out);
}

template <Scalar T>
LayerSpec AffineCoupling<T>::spec() const {
  std::string mask;
  for (std::size_t j = 0; j < mask_.size(); ++j) {
    if (j) mask.push_back(',');
    mask.push_back(mask_[j] ? '1' : '0');
  }
  LayerSpec spec{kind(),
                 {{"dim", std::to_string(this->dim())},
                  {"mask", mask},
                  {"hidden", std::to_string(config_.hidden)},
                  {"hidden_layers", std::to_string(config_.hidden_layers)},
                  {"activation", to_string(config_.activation)}},
                 {}};
  if (config_.context > 0) spec.settings["context"] = std::to_string(config_.context);
  return spec;
}

// y2 = x2 * exp(s(x1)) + t(x1) with x1 passed through, as one affine_columns node.
template <Scalar T>
FlowResult<T> AffineCoupling<T>::forward_impl(const Var<T>& x, const Var<T>& context) {
  const Var<T> in = conditioner_input(select_columns(x, fixed_), context);
  const Var<T> s = (*s_)(in);
  return {affine_columns(x, s, (*t_)(in), changed_), sum(s, 1)};
}

template <Scalar T>
FlowResult<T> AffineCoupling<T>::inverse_impl(const Var<T>& y, const Var<T>& context) {
  const Var<T> in = conditioner_input(select_columns(y, fixed_), context);
  const Var<T> s = (*s_)(in);
  return {affine_columns(y, s, (*t_)(in), changed_, true), -sum(s, 1)};
}

template class AffineCoupling<float>;
template class AffineCoupling<double>;

}  // namespace flowgrad
