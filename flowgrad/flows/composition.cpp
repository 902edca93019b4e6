#include "flowgrad/flows/composition.hpp"

#include <stdexcept>

namespace flowgrad {

template <Scalar T>
Bijector<T>& Composition<T>::add(std::unique_ptr<Bijector<T>> layer) {
  if (!layer || layer->dim() != this->dim())
    throw std::invalid_argument("composition: a layer of dimension " +
                                (layer ? std::to_string(layer->dim()) : std::string("(null)")) +
                                " in a flow of dimension " + std::to_string(this->dim()));
  const Index c = layer->context_dim();
  if (c > 0 && context_dim_ > 0 && c != context_dim_)
    throw std::invalid_argument("composition: a layer conditioned on a context of width " +
                                std::to_string(c) + " in a flow whose context has width " +
                                std::to_string(context_dim_));
  if (c > 0) context_dim_ = c;
  layer->set_label("layers." + std::to_string(layers_.size()) + " (" + layer->kind() + ")");
  layer->train(this->training());
  layers_.push_back(std::move(layer));
  return *layers_.back();
}

template <Scalar T>
LayerSpec Composition<T>::spec() const {
  LayerSpec s{kind(), {{"dim", std::to_string(this->dim())}}, {}};
  for (const auto& layer : layers_) s.layers.push_back(layer->spec());
  return s;
}

template <Scalar T>
void Composition<T>::named_parameters(const std::string& prefix,
                                      std::vector<NamedParameter<T>>& out) {
  for (std::size_t i = 0; i < layers_.size(); ++i)
    layers_[i]->named_parameters(prefix + "layers." + std::to_string(i) + ".", out);
}

template <Scalar T>
void Composition<T>::named_buffers(const std::string& prefix, std::vector<NamedBuffer<T>>& out) {
  for (std::size_t i = 0; i < layers_.size(); ++i)
    layers_[i]->named_buffers(prefix + "layers." + std::to_string(i) + ".", out);
}

template <Scalar T>
void Composition<T>::train(bool on) {
  Module<T>::train(on);
  for (auto& l : layers_) l->train(on);
}

template <Scalar T>
FlowResult<T> Composition<T>::forward_impl(const Var<T>& x, const Var<T>& context) {
  if (layers_.empty()) throw std::logic_error("composition: no layers");
  FlowResult<T> r = layers_[0]->forward(x, context);
  for (std::size_t i = 1; i < layers_.size(); ++i) {
    FlowResult<T> next = layers_[i]->forward(r.out, context);
    r = {next.out, r.log_det + next.log_det};
  }
  return r;
}

template <Scalar T>
FlowResult<T> Composition<T>::inverse_impl(const Var<T>& y, const Var<T>& context) {
  if (layers_.empty()) throw std::logic_error("composition: no layers");
  FlowResult<T> r = layers_.back()->inverse(y, context);
  for (std::size_t i = layers_.size() - 1; i-- > 0;) {
    FlowResult<T> next = layers_[i]->inverse(r.out, context);
    r = {next.out, r.log_det + next.log_det};
  }
  return r;
}

template class Composition<float>;
template class Composition<double>;

}  // namespace flowgrad
