#pragma once
// Radial flow (Rezende & Mohamed 2015): y = x + beta h(alpha, r) (x - z0), r = |x - z0|,
// h = 1 / (alpha + r). alpha = softplus(alpha_raw) > 0 and beta = -alpha + softplus(beta_raw)
// keep beta >= -alpha, the condition for invertibility.
// log|det| = (d - 1) log(1 + beta h) + log(1 + beta h + beta h'(r) r), and
// 1 + beta h + beta h' r = 1 + alpha beta h^2.
// The inverse is closed-form: |y - z0| = r (1 + beta / (alpha + r)) is a quadratic in r. Like the
// planar inverse it carries values only.
#include "flowgrad/flows/bijector.hpp"

namespace flowgrad {

template <Scalar T>
class Radial : public Bijector<T> {
 public:
  Radial(Index dim, Generator& gen);
  std::string kind() const override { return "radial"; }
  void named_parameters(const std::string& prefix, std::vector<NamedParameter<T>>& out) override;
  using Module<T>::named_parameters;
  LayerSpec spec() const override { return {kind(), {{"dim", std::to_string(this->dim())}}, {}}; }

  Parameter<T> z0;         // [dim]
  Parameter<T> alpha_raw;  // [1]
  Parameter<T> beta_raw;   // [1]

 protected:
  FlowResult<T> forward_impl(const Var<T>& x, const Var<T>& context) override;
  FlowResult<T> inverse_impl(const Var<T>& y, const Var<T>& context) override;
};

extern template class Radial<float>;
extern template class Radial<double>;

}  // namespace flowgrad
