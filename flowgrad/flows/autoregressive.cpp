#include "flowgrad/flows/autoregressive.hpp"

#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "flowgrad/autodiff/ops.hpp"

namespace flowgrad {

template <Scalar T>
MaskedAutoregressive<T>::MaskedAutoregressive(Index dim, Index outputs_per_dim,
                                              const MADEConfig& config, Generator& gen)
    : Bijector<T>(dim),
      made_config_(config),
      made_(std::make_unique<MADE<T>>(dim, outputs_per_dim, config, gen)) {}

template <Scalar T>
void MaskedAutoregressive<T>::named_parameters(const std::string& prefix,
                                               std::vector<NamedParameter<T>>& out) {
  made_->named_parameters(prefix + "made.", out);
}

template <Scalar T>
LayerSpec MaskedAutoregressive<T>::made_spec() const {
  LayerSpec spec{this->kind(),
                 {{"dim", std::to_string(this->dim())},
                  {"hidden", std::to_string(made_config_.hidden)},
                  {"hidden_layers", std::to_string(made_config_.hidden_layers)},
                  {"activation", to_string(made_config_.activation)}},
                 {}};
  if (made_config_.context > 0) spec.settings["context"] = std::to_string(made_config_.context);
  return spec;
}

template <Scalar T>
FlowResult<T> MaskedAutoregressive<T>::forward_impl(const Var<T>& x, const Var<T>& context) {
  return transform(x, (*made_)(x, context), false);
}

template <Scalar T>
FlowResult<T> MaskedAutoregressive<T>::inverse_impl(const Var<T>& y, const Var<T>& context) {
  // After pass k coordinates 0..k are exact; the last pass also gives the exact log-det. The
  // result is the inverse as a function of y everywhere, so its tape gradient is the inverse's.
  Tape<T>& tape = y.tape();
  if (tape.grad_enabled()) {
    const typename MADE<T>::OnTape weights = made_->on_tape(tape);
    FlowResult<T> r{y, {}};
    for (Index k = 0; k < this->dim(); ++k)
      r = transform(y, (*made_)(r.out, context, weights), true);
    return r;
  }
  // No gradient wanted (sampling, evaluation): each pass on a scratch tape that the next pass
  // resets, so the d passes hold one pass's nodes instead of all of them (a 784-pixel MAF's
  // sampling would otherwise keep gigabytes).
  if (!scratch_) scratch_ = std::make_unique<Tape<T>>();
  Tape<T>& s = *scratch_;
  s.set_grad_enabled(false);
  Tensor<T> x = y.value(), log_det;
  for (Index k = 0; k < this->dim(); ++k) {
    s.reset();
    const Var<T> c = context.defined() ? s.constant(context.value()) : Var<T>{};
    const FlowResult<T> r = transform(s.constant(y.value()), (*made_)(s.constant(x), c), true);
    x = r.out.value();
    log_det = r.log_det.value();
  }
  s.reset();
  return {tape.constant(x), tape.constant(log_det)};
}

namespace {
MADEConfig made_of(const SplineCouplingConfig& c) {
  return {c.hidden, c.hidden_layers, c.activation, c.context};
}
}  // namespace

template <Scalar T>
MaskedAffineAutoregressive<T>::MaskedAffineAutoregressive(Index dim,
                                                          const MaskedAffineConfig& config,
                                                          Generator& gen)
    : MaskedAutoregressive<T>(dim, 2, config.made, gen), bound_(config.log_scale_bound) {
  if (!(bound_ > 0) || !(bound_ <= 80))
    throw std::invalid_argument("masked_affine_autoregressive: log_scale_bound must be in (0, 80]");
}

template <Scalar T>
LayerSpec MaskedAffineAutoregressive<T>::spec() const {
  LayerSpec spec = this->made_spec();
  char bound[32];
  std::snprintf(bound, sizeof bound, "%.17g", bound_);
  spec.settings["log_scale_bound"] = bound;
  return spec;
}

template <Scalar T>
FlowResult<T> MaskedAffineAutoregressive<T>::transform(const Var<T>& v, const Var<T>& params,
                                                       bool inverse) {
  const AffineResult<T> r = bounded_affine(v, params, T(bound_), inverse);
  return {r.out, r.log_det};
}

template <Scalar T>
MaskedSplineAutoregressive<T>::MaskedSplineAutoregressive(Index dim,
                                                          const SplineCouplingConfig& config,
                                                          Generator& gen)
    : MaskedAutoregressive<T>(
          dim, 3 * config.bins - 1,
          (check_spline_config(config, "masked_spline_autoregressive"), made_of(config)), gen),
      config_(config) {}

template <Scalar T>
LayerSpec MaskedSplineAutoregressive<T>::spec() const {
  LayerSpec spec{this->kind(), {{"dim", std::to_string(this->dim())}}, {}};
  add_spline_settings(config_, spec.settings);
  return spec;
}

template <Scalar T>
FlowResult<T> MaskedSplineAutoregressive<T>::transform(const Var<T>& v, const Var<T>& params,
                                                       bool inverse) {
  const SplineResult<T> r = rational_quadratic_spline(
      v, params, config_.bins, T(config_.tail_bound), inverse, spline_logit_scale(config_));
  return {r.out, sum(r.log_det, 1)};
}

template class MaskedAutoregressive<float>;
template class MaskedAutoregressive<double>;
template class MaskedAffineAutoregressive<float>;
template class MaskedAffineAutoregressive<double>;
template class MaskedSplineAutoregressive<float>;
template class MaskedSplineAutoregressive<double>;

}  // namespace flowgrad
