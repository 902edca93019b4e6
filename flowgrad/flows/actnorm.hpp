#pragma once
// Activation normalisation (Kingma & Dhariwal 2018, Glow): y = (x + b) exp(logs) per column,
// log|det| = sum(logs), the same for every sample. Inverse: x = y exp(-logs) - b, differentiable.
//
// Data-dependent initialisation: the first forward in training mode while the buffer
// `initialized` is 0 sets b = -mean(x) and logs = -log(std(x) + 1e-6) from that batch (biased
// std, computed in double from the values, not on the tape), sets `initialized` to 1, and then
// runs the forward with those parameters, so that batch comes out with per-column mean 0 and
// variance ~1. From then on b and logs are ordinary trained parameters. `initialized` is a buffer,
// so save/load keeps it and a loaded initialised layer does not initialise again. Before
// initialisation (b = 0, logs = 0) the layer is the identity; eval mode and inverse() never
// initialise. In data-parallel training (flowgrad/parallel/collective.hpp) the mean and std are
// those of the global batch, summed over the ranks, so every rank gets the same b and logs.
#include "flowgrad/flows/bijector.hpp"

namespace flowgrad {

template <Scalar T>
class ActNorm : public Bijector<T> {
 public:
  explicit ActNorm(Index dim);
  std::string kind() const override { return "actnorm"; }
  void named_parameters(const std::string& prefix, std::vector<NamedParameter<T>>& out) override;
  void named_buffers(const std::string& prefix, std::vector<NamedBuffer<T>>& out) override;
  using Module<T>::named_parameters;
  using Module<T>::named_buffers;
  LayerSpec spec() const override { return {kind(), {{"dim", std::to_string(this->dim())}}, {}}; }

  bool is_initialized() const { return initialized[0] != T(0); }
  // Sets b and logs from `data` ([n >= 2, dim]) as the first training forward would, and marks
  // the layer initialised.
  void initialize_from(const Tensor<T>& data);

  Parameter<T> b, logs;   // [dim], 0 at start
  Tensor<T> initialized;  // [1]: 0, or 1 once initialised

 protected:
  FlowResult<T> forward_impl(const Var<T>& x, const Var<T>& context) override;
  FlowResult<T> inverse_impl(const Var<T>& y, const Var<T>& context) override;
};

extern template class ActNorm<float>;
extern template class ActNorm<double>;

}  // namespace flowgrad
