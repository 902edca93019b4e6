#pragma once
// Masked autoregressive layers: a MADE computes, for each dimension i, the parameters of a
// monotone map of x_i from x_<i (in column order; put permutations between layers to change it).
//   MaskedAffineAutoregressive (MAF, Papamakarios et al. 2017): y_i = x_i exp(s_i) + t_i with
//     s_i = b tanh(a_i / b), b = log_scale_bound; log|det| = sum s (the op bounded_affine()).
//   MaskedSplineAutoregressive (NSF-AR, Durkan et al. 2019): y_i = spline_i(x_i), the
//     rational-quadratic spline of rational_quadratic_spline() (flowgrad/autodiff/ops.hpp).
// forward is one pass of the MADE; inverse takes dim passes (pass k fixes coordinate k, because
// coordinate k's parameters depend only on coordinates already fixed), so inverse costs dim
// forwards. A DensityFlow of these layers is a MAF: density in one pass, sampling in dim passes.
// A VariationalFlow of the same layers is an IAF (Kingma et al. 2016): its forward is the
// sampling direction, so it samples (with log q) in one pass, and log q of given points takes
// dim passes.
//
// Why a tanh-bounded log-scale: it is the identity near 0 (the layer starts as the identity, as an
// exp parameterisation does) but keeps each layer's scale within exp(+-b), so neither direction can
// overflow: the dim-pass inverse divides by exp(s), and an IAF's samples are multiplied by it. A
// softplus scale is bounded only below; a sigmoid one (nflows' coupling) caps the scale near 1.
#include <memory>
#include <vector>

#include "flowgrad/flows/bijector.hpp"
#include "flowgrad/flows/made.hpp"
#include "flowgrad/flows/spline_coupling.hpp"

namespace flowgrad {

// What both layers share: the MADE and the dim-pass inverse.
template <Scalar T>
class MaskedAutoregressive : public Bijector<T> {
 public:
  void named_parameters(const std::string& prefix, std::vector<NamedParameter<T>>& out) override;
  using Module<T>::named_parameters;
  MADE<T>& made() { return *made_; }
  Index context_dim() const override { return made_config_.context; }

 protected:
  MaskedAutoregressive(Index dim, Index outputs_per_dim, const MADEConfig& config, Generator& gen);
  // y from x (or x from y when inverse) given the MADE's output at x.
  virtual FlowResult<T> transform(const Var<T>& v, const Var<T>& params, bool inverse) = 0;
  FlowResult<T> forward_impl(const Var<T>& x, const Var<T>& context) override;
  FlowResult<T> inverse_impl(const Var<T>& y, const Var<T>& context) override;
  LayerSpec made_spec() const;

 private:
  MADEConfig made_config_;
  std::unique_ptr<MADE<T>> made_;
  std::unique_ptr<Tape<T>> scratch_;  // the inverse's passes when no gradient is wanted
};

struct MaskedAffineConfig {
  MADEConfig made;             // 50 x 2, tanh: the sbi package's MAF default
  double log_scale_bound = 3;  // b: each layer scales by at most exp(+-b)
};

template <Scalar T>
class MaskedAffineAutoregressive : public MaskedAutoregressive<T> {
 public:
  // The MADE's last layer starts at zero: the layer starts as the identity.
  MaskedAffineAutoregressive(Index dim, const MaskedAffineConfig& config, Generator& gen);
  std::string kind() const override { return "masked_affine_autoregressive"; }
  LayerSpec spec() const override;

 protected:
  FlowResult<T> transform(const Var<T>& v, const Var<T>& params, bool inverse) override;

 private:
  double bound_;
};

// The spline layer takes a spline coupling's settings: bins, tail bound and the network's shape.
template <Scalar T>
class MaskedSplineAutoregressive : public MaskedAutoregressive<T> {
 public:
  // As in SplineCoupling: the MADE's last layer starts at zero and the width and height logits
  // are divided by sqrt(hidden).
  MaskedSplineAutoregressive(Index dim, const SplineCouplingConfig& config, Generator& gen);
  std::string kind() const override { return "masked_spline_autoregressive"; }
  LayerSpec spec() const override;

 protected:
  FlowResult<T> transform(const Var<T>& v, const Var<T>& params, bool inverse) override;

 private:
  SplineCouplingConfig config_;
};

extern template class MaskedAutoregressive<float>;
extern template class MaskedAutoregressive<double>;
extern template class MaskedAffineAutoregressive<float>;
extern template class MaskedAffineAutoregressive<double>;
extern template class MaskedSplineAutoregressive<float>;
extern template class MaskedSplineAutoregressive<double>;

}  // namespace flowgrad
