#pragma once
// Batch-norm bijector (Dinh et al. 2017): y = (x - mean) / sqrt(var + eps) exp(log_gamma) + beta,
// log|det| = sum(log_gamma - 0.5 log(var + eps)), the same for every sample.
//
// Training mode normalises with the batch's own mean and (biased) variance, differentiably, and
// moves the running averages: running = (1 - momentum) running + momentum batch. Eval mode uses the
// running averages, and is the mode with an exact inverse; inverse() always uses them, and throws
// until some statistics exist (a training-mode forward, or set_statistics()).
#include "flowgrad/flows/bijector.hpp"

namespace flowgrad {

template <Scalar T>
class BatchNorm : public Bijector<T> {
 public:
  explicit BatchNorm(Index dim, double momentum = 0.1, double eps = 1e-5);
  std::string kind() const override { return "batch_norm"; }
  void named_parameters(const std::string& prefix, std::vector<NamedParameter<T>>& out) override;
  void named_buffers(const std::string& prefix, std::vector<NamedBuffer<T>>& out) override;
  using Module<T>::named_parameters;
  using Module<T>::named_buffers;

  // Sets the running statistics to the exact mean and variance of `data` ([n, dim], n >= 2).
  void set_statistics(const Tensor<T>& data);
  bool has_statistics() const { return num_batches_tracked[0] > 0; }
  LayerSpec spec() const override;

  Parameter<T> log_gamma, beta;         // [dim]
  Tensor<T> running_mean, running_var;  // [dim]
  Tensor<T> num_batches_tracked;        // [1]; 0 until statistics exist

 protected:
  FlowResult<T> forward_impl(const Var<T>& x, const Var<T>& context) override;
  FlowResult<T> inverse_impl(const Var<T>& y, const Var<T>& context) override;

 private:
  T momentum_, eps_;
  // As given to the constructor, for spec(): the T values above would not print back the same.
  double momentum_setting_, eps_setting_;
};

extern template class BatchNorm<float>;
extern template class BatchNorm<double>;

}  // namespace flowgrad
