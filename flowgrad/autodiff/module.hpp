#pragma once
// Modules own parameters (and buffers such as running statistics) outside any tape, and list them
// under PyTorch-style names ("layers.3.s.2.bias") so that checkpoints read like torch state dicts.
#include <string>
#include <vector>

#include "flowgrad/autodiff/parameter.hpp"
#include "flowgrad/autodiff/tape.hpp"
#include "flowgrad/tensor/activation.hpp"
#include "flowgrad/tensor/random.hpp"

namespace flowgrad {

template <Scalar T>
struct NamedParameter {
  std::string name;
  Parameter<T>* param;
};
template <Scalar T>
struct NamedBuffer {
  std::string name;
  Tensor<T>* tensor;
  // A statistic of the training batches (batch norm's running averages): data-parallel training
  // averages it over the ranks after each step; every other buffer is the same on every rank.
  bool batch_statistic = false;
};

template <Scalar T>
class Module {
 public:
  virtual ~Module() = default;

  // Appends this module's parameters (buffers), each name prefixed with `prefix`.
  virtual void named_parameters(const std::string& prefix, std::vector<NamedParameter<T>>& out) = 0;
  virtual void named_buffers(const std::string& /*prefix*/, std::vector<NamedBuffer<T>>& /*out*/) {}

  std::vector<NamedParameter<T>> named_parameters();
  std::vector<NamedBuffer<T>> named_buffers();
  std::vector<Parameter<T>*> parameters();
  Index parameter_count();
  void zero_grad();
  void clear_grad();  // see Parameter::clear_grad

  // Training mode changes what layers such as batch norm compute; it has nothing to do with
  // whether gradients are recorded (see NoGradGuard).
  virtual void train(bool on = true) { training_ = on; }
  void eval() { train(false); }
  bool training() const { return training_; }

 private:
  bool training_ = true;
};

// y = x W^T + b, weight [out, in], bias [out]; both start uniform in +-1/sqrt(in), as
// torch.nn.Linear.
template <Scalar T>
class Linear : public Module<T> {
 public:
  Linear(Index in_features, Index out_features, Generator& gen);
  Var<T> operator()(const Var<T>& x);
  // act(x W^T + b) as one fused node.
  Var<T> operator()(const Var<T>& x, Activation act);
  void named_parameters(const std::string& prefix, std::vector<NamedParameter<T>>& out) override;
  using Module<T>::named_parameters;
  // Throws std::invalid_argument when x does not have in_features() columns.
  void check_input(const Var<T>& x) const;
  Index in_features() const { return weight.value.cols(); }
  Index out_features() const { return weight.value.rows(); }

  Parameter<T> weight;
  Parameter<T> bias;
};

// Linear layers with an activation between them (and optionally after the last), named as a
// torch.nn.Sequential of Linear and activation modules: "0.weight", "2.weight", ...
template <Scalar T>
class MLP : public Module<T> {
 public:
  // sizes = {in, hidden..., out}
  MLP(const std::vector<Index>& sizes, Activation hidden, Generator& gen,
      Activation output = Activation::none);
  Var<T> operator()(const Var<T>& x);
  void named_parameters(const std::string& prefix, std::vector<NamedParameter<T>>& out) override;
  using Module<T>::named_parameters;
  std::vector<Linear<T>>& layers() { return layers_; }

 private:
  std::vector<Linear<T>> layers_;
  Activation hidden_, output_;
};

extern template class Module<float>;
extern template class Module<double>;
extern template class Linear<float>;
extern template class Linear<double>;
extern template class MLP<float>;
extern template class MLP<double>;

}  // namespace flowgrad
