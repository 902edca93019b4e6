#pragma once
// Affine coupling (Dinh et al. 2017). A binary mask picks the columns x1 that pass through
// unchanged; the others become y2 = x2 exp(s(x1)) + t(x1), so log|det| = sum s(x1). s and t are
// MLPs; s ends in tanh, which bounds the scale and keeps exp(s) from blowing up.
#include <memory>
#include <string>
#include <vector>

#include "flowgrad/flows/bijector.hpp"

namespace flowgrad {

struct CouplingConfig {
  Index hidden = 64;      // width of each hidden layer of s and t
  int hidden_layers = 2;  // d1 -> H -> ... -> H -> d2
  Activation activation = Activation::relu;
  Index context = 0;  // width of the context c fed to s and t beside x1 (0: unconditional)
};

// What a conditioner network sees: x1, and beside it the context when there is one.
template <Scalar T>
Var<T> conditioner_input(const Var<T>& x1, const Var<T>& context) {
  return context.defined() ? cat({x1, context}) : x1;
}

// The columns a coupling's mask fixes (entries 1) and changes (entries 0), in order. Throws
// std::invalid_argument naming `layer` when an entry is not 0 or 1 or either kind is missing.
struct MaskColumns {
  std::vector<Index> fixed, changed;
};
MaskColumns split_mask(const std::vector<int>& mask, const std::string& layer);

template <Scalar T>
class AffineCoupling : public Bijector<T> {
 public:
  // mask[j] = 1 keeps column j fixed; at least one column of each kind.
  AffineCoupling(std::vector<int> mask, const CouplingConfig& config, Generator& gen);
  // The default masks: parity 0 fixes the first floor(dim / 2) columns, parity 1 the rest.
  static std::vector<int> half_mask(Index dim, int parity);

  std::string kind() const override { return "affine_coupling"; }
  Index context_dim() const override { return config_.context; }
  void named_parameters(const std::string& prefix, std::vector<NamedParameter<T>>& out) override;
  using Module<T>::named_parameters;
  const std::vector<int>& mask() const { return mask_; }
  const CouplingConfig& config() const { return config_; }
  LayerSpec spec() const override;

 protected:
  FlowResult<T> forward_impl(const Var<T>& x, const Var<T>& context) override;
  FlowResult<T> inverse_impl(const Var<T>& y, const Var<T>& context) override;

 private:
  std::vector<int> mask_;
  CouplingConfig config_;
  std::vector<Index> fixed_, changed_;  // column indices of x1 and x2
  std::unique_ptr<MLP<T>> s_, t_;
};

extern template class AffineCoupling<float>;
extern template class AffineCoupling<double>;

}  // namespace flowgrad
