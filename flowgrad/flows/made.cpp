#include "flowgrad/flows/made.hpp"

#include <algorithm>
#include <array>
#include <span>
#include <stdexcept>

#include "flowgrad/autodiff/ops.hpp"

namespace flowgrad {

template <Scalar T>
MADE<T>::MADE(Index dim, Index outputs_per_dim, const MADEConfig& config, Generator& gen,
              bool zero_last)
    : dim_(dim),
      outputs_per_dim_(outputs_per_dim),
      context_(config.context),
      activation_(config.activation) {
  if (dim < 1 || outputs_per_dim < 1)
    throw std::invalid_argument("made: needs dimension >= 1 and >= 1 output per dimension");
  if (config.hidden < 1 || config.hidden_layers < 1 ||
      config.hidden_layers > made_max_hidden_layers)
    throw std::invalid_argument("made: needs hidden width >= 1 and 1.." +
                                std::to_string(made_max_hidden_layers) + " hidden layers");
  if (config.context < 0) throw std::invalid_argument("made: negative context width");
  // Inputs x_0..x_{d-1} have degrees 1..d; context inputs degree 0 (seen by every unit).
  std::vector<Index> in_degree(static_cast<std::size_t>(dim + config.context), 0);
  for (Index i = 0; i < dim; ++i) in_degree[static_cast<std::size_t>(i)] = i + 1;
  // Unconditional: degrees 1..d-1 (a unit of degree 0 would see nothing). With a context, 0..d-1:
  // units of degree 0 see the context alone, and they are what lets output block 0 (which sees
  // no x) depend on it.
  std::vector<Index> hidden_degree(static_cast<std::size_t>(config.hidden));
  const bool conditional = config.context > 0;
  const Index cycle = conditional ? dim : std::max<Index>(dim - 1, 1);
  for (Index k = 0; k < config.hidden; ++k)
    hidden_degree[static_cast<std::size_t>(k)] = (conditional ? 0 : 1) + k % cycle;
  std::vector<Index> out_degree(static_cast<std::size_t>(dim * outputs_per_dim));
  for (Index o = 0; o < dim * outputs_per_dim; ++o)
    out_degree[static_cast<std::size_t>(o)] = o / outputs_per_dim + 1;

  // One layer from degrees `from` to degrees `to`; strict for the output layer.
  auto add_layer = [&](const std::vector<Index>& from, const std::vector<Index>& to, bool strict) {
    const Index in = static_cast<Index>(from.size()), out = static_cast<Index>(to.size());
    layers_.emplace_back(in, out, gen);
    Tensor<T> mask(Shape{out, in}, T(0));
    for (Index r = 0; r < out; ++r)
      for (Index c = 0; c < in; ++c) {
        const Index a = to[static_cast<std::size_t>(r)], b = from[static_cast<std::size_t>(c)];
        mask(r, c) = (strict ? a > b : a >= b) ? T(1) : T(0);
      }
    // Masked-out weights are zero in the parameter too, so the saved tensor shows the structure.
    Tensor<T>& w = layers_.back().weight.value;
    for (Index i = 0; i < w.numel(); ++i) w[i] *= mask[i];
    masks_.push_back(std::move(mask));
  };
  add_layer(in_degree, hidden_degree, false);
  for (int l = 1; l < config.hidden_layers; ++l) add_layer(hidden_degree, hidden_degree, false);
  add_layer(hidden_degree, out_degree, true);
  if (zero_last) {
    layers_.back().weight.value.fill(T(0));
    layers_.back().bias.value.fill(T(0));
  }
}

template <Scalar T>
typename MADE<T>::OnTape MADE<T>::on_tape(Tape<T>& t) {
  OnTape w;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    w.params[2 * l] = mul(t.parameter(layers_[l].weight), t.constant(masks_[l]));
    w.params[2 * l + 1] = t.parameter(layers_[l].bias);
  }
  return w;
}

template <Scalar T>
Var<T> MADE<T>::operator()(const Var<T>& x, const Var<T>& context) {
  return (*this)(x, context, on_tape(x.tape()));
}

template <Scalar T>
Var<T> MADE<T>::operator()(const Var<T>& x_only, const Var<T>& context, const OnTape& weights) {
  if (context_ > 0 && !context.defined())
    throw std::invalid_argument("made: needs a context of " + std::to_string(context_) +
                                " columns");
  const Var<T> x = context_ > 0 ? cat({x_only, context}) : x_only;
  layers_.front().check_input(x);
  const auto& params = weights.params;
  if (layers_.size() <= static_cast<std::size_t>(mlp_max_layers))
    return mlp(x, std::span<const Var<T>>(params.data(), 2 * layers_.size()), activation_,
               Activation::none);
  Var<T> h = x;
  for (std::size_t l = 0; l < layers_.size(); ++l)
    h = linear(h, params[2 * l], params[2 * l + 1],
               l + 1 < layers_.size() ? activation_ : Activation::none);
  return h;
}

template <Scalar T>
void MADE<T>::named_parameters(const std::string& prefix, std::vector<NamedParameter<T>>& out) {
  for (std::size_t l = 0; l < layers_.size(); ++l)
    layers_[l].named_parameters(prefix + "layers." + std::to_string(l) + ".", out);
}

template class MADE<float>;
template class MADE<double>;

}  // namespace flowgrad
