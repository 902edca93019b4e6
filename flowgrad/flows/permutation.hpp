#pragma once
// A fixed permutation of the columns: y[:, j] = x[:, order[j]], log|det| = 0. Forward and inverse
// are select_columns, so gradients flow through both.
//
// The order is the buffer `order` ([dim], the indices stored as T, exact for dim < 2^24), so a
// loaded model keeps a random order. It is checked to be a permutation of 0..dim-1 whenever the
// layer runs (a corrupt file fails there with std::invalid_argument naming the layer).
#include "flowgrad/flows/bijector.hpp"
#include "flowgrad/tensor/random.hpp"

namespace flowgrad {

enum class PermutationMode { reverse, random };
std::string to_string(PermutationMode mode);
// "reverse" or "random"; throws std::invalid_argument otherwise.
PermutationMode permutation_mode_from_string(const std::string& name);

template <Scalar T>
class Permutation : public Bijector<T> {
 public:
  // reverse: order = dim-1, ..., 0 (gen unused); random: gen.permutation(dim).
  Permutation(Index dim, PermutationMode mode, Generator& gen);
  std::string kind() const override { return "permutation"; }
  void named_parameters(const std::string&, std::vector<NamedParameter<T>>&) override {}
  void named_buffers(const std::string& prefix, std::vector<NamedBuffer<T>>& out) override;
  using Module<T>::named_parameters;
  using Module<T>::named_buffers;
  LayerSpec spec() const override;

  PermutationMode mode() const { return mode_; }
  // The order as indices, checked; throws std::invalid_argument if `order` is not a permutation.
  const std::vector<Index>& indices();

  Tensor<T> order;  // [dim]

 protected:
  FlowResult<T> forward_impl(const Var<T>& x, const Var<T>& context) override;
  FlowResult<T> inverse_impl(const Var<T>& y, const Var<T>& context) override;

 private:
  void refresh();
  PermutationMode mode_;
  std::vector<Index> forward_idx_, inverse_idx_;
  Tensor<T> checked_;  // the `order` values forward_idx_ was built from
};

extern template class Permutation<float>;
extern template class Permutation<double>;

}  // namespace flowgrad
