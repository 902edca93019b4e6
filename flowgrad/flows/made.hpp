#pragma once
// MADE (Germain et al. 2015): an MLP whose weights are multiplied by fixed 0/1 masks so that the
// outputs for dimension i depend only on the inputs before i. Degrees: input i (0-based) has
// degree i + 1, hidden unit k has degree 1 + (k mod max(dim - 1, 1)) (assigned sequentially; with
// a context, k mod dim, see below), and
// output column o belongs to dimension o / outputs_per_dim (dimension-major) with that
// dimension's degree. A hidden weight is kept where deg_out >= deg_in, an output weight where
// deg_out > deg_in. So output block 0 sees no input (only biases), and the Jacobian of the outputs
// with respect to the inputs is strictly block-lower-triangular. A context (conditioning input)
// enters the first layer beside x with degree 0: every hidden unit sees all of it, and hidden
// units of degree 0 see only it, so that every output block, the first too, depends on it; the
// property above still holds for x.
//
// The masks are built at construction and never saved: the layer's settings determine them. On a
// tape each step multiplies each weight by its mask (one node each, in the tape's own buffers, so a
// warm step allocates nothing); gradients reach only the kept weights.
#include <array>
#include <vector>

#include "flowgrad/autodiff/module.hpp"

namespace flowgrad {

inline constexpr int made_max_hidden_layers = 16;

struct MADEConfig {
  Index hidden = 50;      // units per hidden layer, >= 1
  int hidden_layers = 2;  // 1..made_max_hidden_layers
  Activation activation = Activation::tanh;
  Index context = 0;  // context inputs, seen by every hidden unit of the first layer (unmasked)
};

template <Scalar T>
class MADE : public Module<T> {
 public:
  // The last layer starts at zero when zero_last is set (so a flow layer starts as a fixed map).
  MADE(Index dim, Index outputs_per_dim, const MADEConfig& config, Generator& gen,
       bool zero_last = true);

  // The masked weights and the biases on one tape. A call multiplies the weights by their masks
  // anew; several calls on one tape (an autoregressive inverse's d passes) share them instead.
  struct OnTape {
    std::array<Var<T>, 2 * (made_max_hidden_layers + 1)> params;
  };
  OnTape on_tape(Tape<T>& tape);

  // [batch, dim] (and the context [batch, context], when the MADE has one) ->
  // [batch, dim * outputs_per_dim].
  Var<T> operator()(const Var<T>& x, const Var<T>& context = {});
  Var<T> operator()(const Var<T>& x, const Var<T>& context, const OnTape& weights);
  void named_parameters(const std::string& prefix, std::vector<NamedParameter<T>>& out) override;
  using Module<T>::named_parameters;

  Index dim() const { return dim_; }
  Index outputs_per_dim() const { return outputs_per_dim_; }
  Index context_dim() const { return context_; }
  std::vector<Linear<T>>& layers() { return layers_; }
  // masks()[l] is [out, in] like layers()[l].weight.
  const std::vector<Tensor<T>>& masks() const { return masks_; }

 private:
  Index dim_, outputs_per_dim_, context_;
  Activation activation_;
  std::vector<Linear<T>> layers_;
  std::vector<Tensor<T>> masks_;
};

extern template class MADE<float>;
extern template class MADE<double>;

}  // namespace flowgrad
