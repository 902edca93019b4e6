#pragma once
// A chain of bijectors: forward runs them in order and adds their log-determinants; inverse runs
// them in reverse. Children are named "layers.<i>." as in a torch ModuleList.
#include <memory>
#include <vector>

#include "flowgrad/flows/bijector.hpp"

namespace flowgrad {

template <Scalar T>
class Composition : public Bijector<T> {
 public:
  explicit Composition(Index dim) : Bijector<T>(dim) {}
  // Appends a layer of the same dimension, and of the chain's context width if both condition
  // on one (std::invalid_argument otherwise); returns it for configuration.
  Bijector<T>& add(std::unique_ptr<Bijector<T>> layer);
  // The context width of the chain's conditioned layers (0 if none): the chain passes its context
  // to every layer.
  Index context_dim() const override { return context_dim_; }

  std::string kind() const override { return "composition"; }
  void named_parameters(const std::string& prefix, std::vector<NamedParameter<T>>& out) override;
  void named_buffers(const std::string& prefix, std::vector<NamedBuffer<T>>& out) override;
  using Module<T>::named_parameters;
  using Module<T>::named_buffers;
  void train(bool on = true) override;
  LayerSpec spec() const override;

  std::size_t size() const { return layers_.size(); }
  Bijector<T>& operator[](std::size_t i) { return *layers_[i]; }

 protected:
  FlowResult<T> forward_impl(const Var<T>& x, const Var<T>& context) override;
  FlowResult<T> inverse_impl(const Var<T>& y, const Var<T>& context) override;
  bool checks_values() const override { return false; }

 private:
  std::vector<std::unique_ptr<Bijector<T>>> layers_;
  Index context_dim_ = 0;
};

extern template class Composition<float>;
extern template class Composition<double>;

}  // namespace flowgrad
