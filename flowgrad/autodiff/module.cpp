#include "flowgrad/autodiff/module.hpp"

#include <array>
#include <cmath>
#include <stdexcept>

#include "flowgrad/autodiff/ops.hpp"

namespace flowgrad {

template <Scalar T>
std::vector<NamedParameter<T>> Module<T>::named_parameters() {
  std::vector<NamedParameter<T>> out;
  named_parameters("", out);
  return out;
}

template <Scalar T>
std::vector<NamedBuffer<T>> Module<T>::named_buffers() {
  std::vector<NamedBuffer<T>> out;
  named_buffers("", out);
  return out;
}

template <Scalar T>
std::vector<Parameter<T>*> Module<T>::parameters() {
  std::vector<Parameter<T>*> out;
  for (auto& np : named_parameters()) out.push_back(np.param);
  return out;
}

template <Scalar T>
Index Module<T>::parameter_count() {
  Index n = 0;
  for (auto* p : parameters()) n += p->value.numel();
  return n;
}

template <Scalar T>
void Module<T>::zero_grad() {
  for (auto* p : parameters()) p->zero_grad();
}

template <Scalar T>
void Module<T>::clear_grad() {
  for (auto* p : parameters()) p->clear_grad();
}

template <Scalar T>
Linear<T>::Linear(Index in_features, Index out_features, Generator& gen) {
  if (in_features <= 0 || out_features <= 0)
    throw std::invalid_argument("Linear: sizes must be positive, got " +
                                std::to_string(in_features) + " -> " +
                                std::to_string(out_features));
  const T bound = T(1) / std::sqrt(static_cast<T>(in_features));
  weight = Parameter<T>(gen.uniform<T>(Shape{out_features, in_features}, -bound, bound));
  bias = Parameter<T>(gen.uniform<T>(Shape{out_features}, -bound, bound));
}

template <Scalar T>
void Linear<T>::check_input(const Var<T>& x) const {
  if (x.cols() != in_features())
    throw std::invalid_argument("Linear: input " + x.shape().str() + " for a layer of " +
                                std::to_string(in_features()) + " inputs");
}

template <Scalar T>
Var<T> Linear<T>::operator()(const Var<T>& x) {
  check_input(x);
  Tape<T>& t = x.tape();
  return linear(x, t.parameter(weight), t.parameter(bias));
}

template <Scalar T>
Var<T> Linear<T>::operator()(const Var<T>& x, Activation act) {
  check_input(x);
  Tape<T>& t = x.tape();
  return linear(x, t.parameter(weight), t.parameter(bias), act);
}

template <Scalar T>
void Linear<T>::named_parameters(const std::string& prefix, std::vector<NamedParameter<T>>& out) {
  out.push_back({prefix + "weight", &weight});
  out.push_back({prefix + "bias", &bias});
}

template <Scalar T>
MLP<T>::MLP(const std::vector<Index>& sizes, Activation hidden, Generator& gen, Activation output)
    : hidden_(hidden), output_(output) {
  if (sizes.size() < 2)
    throw std::invalid_argument("MLP: needs at least an input and an output size");
  layers_.reserve(sizes.size() - 1);
  for (std::size_t i = 0; i + 1 < sizes.size(); ++i)
    layers_.emplace_back(sizes[i], sizes[i + 1], gen);
}

template <Scalar T>
Var<T> MLP<T>::operator()(const Var<T>& x) {
  if (layers_.size() <= static_cast<std::size_t>(mlp_max_layers)) {
    layers_.front().check_input(x);
    Tape<T>& t = x.tape();
    std::array<Var<T>, 2 * mlp_max_layers> params;
    std::size_t k = 0;
    for (Linear<T>& layer : layers_) {
      params[k++] = t.parameter(layer.weight);
      params[k++] = t.parameter(layer.bias);
    }
    return mlp(x, std::span<const Var<T>>(params.data(), k), hidden_, output_);
  }
  Var<T> h = x;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    h = layers_[i](h, i + 1 < layers_.size() ? hidden_ : output_);
  }
  return h;
}

template <Scalar T>
void MLP<T>::named_parameters(const std::string& prefix, std::vector<NamedParameter<T>>& out) {
  // In the equivalent nn.Sequential every activation takes an index too.
  const std::size_t stride = hidden_ == Activation::none ? 1 : 2;
  for (std::size_t i = 0; i < layers_.size(); ++i)
    layers_[i].named_parameters(prefix + std::to_string(i * stride) + ".", out);
}

template class Module<float>;
template class Module<double>;
template class Linear<float>;
template class Linear<double>;
template class MLP<float>;
template class MLP<double>;

}  // namespace flowgrad
