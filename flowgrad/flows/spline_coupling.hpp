#pragma once
// Rational-quadratic spline coupling (NSF-C, Durkan et al. 2019). A binary mask picks the columns
// x1 that pass through unchanged; each other column goes through its own monotone
// rational-quadratic spline on [-tail_bound, tail_bound] (the identity outside), whose 3K - 1
// parameters a conditioner MLP computes from x1. log|det| is the sum of the splines'
// log-derivatives. The op and its formulas: rational_quadratic_spline() in
// flowgrad/autodiff/ops.hpp, docs/design.md §4.
#include <memory>
#include <vector>

#include "flowgrad/flows/bijector.hpp"

namespace flowgrad {

struct SplineCouplingConfig {
  Index bins = 8;         // K, 1..128
  double tail_bound = 4;  // B: the splines act on [-B, B]
  Index hidden = 64;      // width of each hidden layer of the conditioner
  int hidden_layers = 2;  // |x1| -> H -> ... -> H -> |x2| (3K - 1)
  Activation activation = Activation::relu;
  Index context = 0;  // width of the context c fed to the conditioner beside x1 (0: none)
};

// Shared with the autoregressive spline layer (autoregressive.hpp):
// throws std::invalid_argument, naming `layer`, on a configuration out of range;
void check_spline_config(const SplineCouplingConfig& config, const std::string& layer);
// adds bins, tail_bound, hidden, hidden_layers and activation to a spec's settings;
void add_spline_settings(const SplineCouplingConfig& config,
                         std::map<std::string, std::string>& settings);
// 1/sqrt(hidden): the factor on the conditioner's width and height logits.
double spline_logit_scale(const SplineCouplingConfig& config);

template <Scalar T>
class SplineCoupling : public Bijector<T> {
 public:
  // mask[j] = 1 keeps column j fixed; at least one column of each kind. The conditioner's last
  // layer starts at zero (every spline starts as the same fixed map of equal bins), and its width
  // and height logits are divided by sqrt(hidden).
  SplineCoupling(std::vector<int> mask, const SplineCouplingConfig& config, Generator& gen);

  std::string kind() const override { return "spline_coupling"; }
  Index context_dim() const override { return config_.context; }
  void named_parameters(const std::string& prefix, std::vector<NamedParameter<T>>& out) override;
  using Module<T>::named_parameters;
  const std::vector<int>& mask() const { return mask_; }
  const SplineCouplingConfig& config() const { return config_; }
  LayerSpec spec() const override;

 protected:
  FlowResult<T> forward_impl(const Var<T>& x, const Var<T>& context) override;
  FlowResult<T> inverse_impl(const Var<T>& y, const Var<T>& context) override;

 private:
  FlowResult<T> run(const Var<T>& v, const Var<T>& context, bool inverse);

  std::vector<int> mask_;
  SplineCouplingConfig config_;
  std::vector<Index> fixed_, changed_;  // column indices of x1 and x2
  std::vector<Index> order_;            // column c of the output is column order_[c] of [x1, y2]
  std::unique_ptr<MLP<T>> net_;
};

extern template class SplineCoupling<float>;
extern template class SplineCoupling<double>;

}  // namespace flowgrad
