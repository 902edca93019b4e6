#pragma once
// Optimizers over a module's parameters, with torch.optim's update rules and defaults.
#include <vector>

#include "flowgrad/autodiff/parameter.hpp"
#include "flowgrad/autodiff/tape.hpp"

namespace flowgrad {

template <Scalar T>
class Optimizer {
 public:
  explicit Optimizer(std::vector<Parameter<T>*> params) : params_(std::move(params)) {}
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  void zero_grad() {
    for (auto* p : params_) p->zero_grad();
  }
  // Empties the gradients without writing zeros (Parameter::clear_grad): the next backward()
  // writes them, which saves a pass over every gradient in each training step.
  void clear_grad() {
    for (auto* p : params_) p->clear_grad();
  }
  const std::vector<Parameter<T>*>& params() const { return params_; }

 protected:
  std::vector<Parameter<T>*> params_;
};

// v = momentum v + g; p -= lr v (torch.optim.SGD without dampening or Nesterov).
template <Scalar T>
class SGD : public Optimizer<T> {
 public:
  SGD(std::vector<Parameter<T>*> params, T lr, T momentum = T(0));
  void step() override;

 private:
  T lr_, momentum_;
  std::vector<Tensor<T>> velocity_;
};

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;  // L2 added to the gradient, as torch.optim.Adam
};

// Everything Adam carries from one step to the next, for checkpoints that resume exactly
// (flowgrad/autodiff/io/module_io.hpp).
template <Scalar T>
struct AdamState {
  AdamOptions options;
  long steps = 0;
  std::vector<Tensor<T>> exp_avg, exp_avg_sq;  // one per parameter, in params() order
};

// Adam with bias correction (Kingma & Ba), in torch.optim.Adam's form:
// p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
template <Scalar T>
class Adam : public Optimizer<T> {
 public:
  explicit Adam(std::vector<Parameter<T>*> params, AdamOptions opt = {});
  void step() override;
  // loss's backward() and step() in one pass, with the same results: where one backward rule forms
  // a parameter's whole gradient (an mlp() layer's weight or bias), the update is applied right
  // there, from the gradient still in cache, which is never written to the parameter's buffer and
  // read back. Those parameters are left without a gradient (has_grad() false); the
  // others get theirs and are updated as by step(). For loops with nothing between backward and
  // step: no clipping, no check of the gradients (Trainer keeps the two apart for its checks).
  // Parameters whose gradient was not empty (no clear_grad() since the last step) are accumulated
  // into as by backward() and updated afterwards. Not for data-parallel training, whose gradients
  // are summed over the ranks between the two. Should backward() throw, the parameters it had
  // updated keep their update and the step count stays.
  void backward_step(const Var<T>& loss);
  void set_lr(double lr) { opt_.lr = lr; }
  long steps() const { return t_; }
  AdamState<T> state() const { return {opt_, t_, m_, v_}; }
  // Throws std::invalid_argument, changing nothing, unless the options are valid, steps >= 0 and
  // there is one moment of each parameter's shape.
  void set_state(AdamState<T> state);

 private:
  AdamOptions opt_;
  long t_ = 0;
  std::vector<Tensor<T>> m_, v_;
  std::vector<char> claimed_;  // per parameter: updated inside backward_step's backward pass
  class Fused;
  // Updates, at the current step count, every parameter not marked in `skip` (if given).
  void update(const std::vector<char>* skip);
};

// Scales all gradients together so that their global L2 norm is at most max_norm; returns the norm
// before clipping (torch.nn.utils.clip_grad_norm_).
template <Scalar T>
T clip_grad_norm(const std::vector<Parameter<T>*>& params, T max_norm);

extern template class SGD<float>;
extern template class SGD<double>;
extern template class Adam<float>;
extern template class Adam<double>;

}  // namespace flowgrad
