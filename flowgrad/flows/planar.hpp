#pragma once
// Planar flow (Rezende & Mohamed 2015): y = x + u_hat tanh(w.x + b).
//
// u_hat = u + (m(w.u) - w.u) w / |w|^2 with m(a) = -1 + softplus(a) keeps w.u_hat > -1, which makes
// the map invertible; log|det| = log|1 + (1 - tanh^2(w.x + b)) w.u_hat|. At the boundary
// w.u_hat = -1 (approached only as w.u -> -inf, reached in floating point once softplus underflows)
// the Jacobian is singular where w.x + b = 0: log|det| is -inf there and the inverse is not unique.
//
// The inverse has no closed form but is exact: a = w.x solves w.y = a + (w.u_hat) tanh(a + b),
// monotone in a, which is solved per sample by bracketed Newton in double precision; then
// x = y - u_hat tanh(a + b). The inverse carries values only: no gradient flows through it.
#include "flowgrad/flows/bijector.hpp"

namespace flowgrad {

template <Scalar T>
class Planar : public Bijector<T> {
 public:
  Planar(Index dim, Generator& gen);
  std::string kind() const override { return "planar"; }
  void named_parameters(const std::string& prefix, std::vector<NamedParameter<T>>& out) override;
  using Module<T>::named_parameters;
  LayerSpec spec() const override { return {kind(), {{"dim", std::to_string(this->dim())}}, {}}; }

  Parameter<T> w, u, b;  // w, u: [dim]; b: [1]

 protected:
  FlowResult<T> forward_impl(const Var<T>& x, const Var<T>& context) override;
  FlowResult<T> inverse_impl(const Var<T>& y, const Var<T>& context) override;
};

extern template class Planar<float>;
extern template class Planar<double>;

}  // namespace flowgrad
