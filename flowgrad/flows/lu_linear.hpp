#pragma once
// An invertible linear layer in LU form (Kingma & Dhariwal 2018, Glow's 1x1 convolution on
// vectors): y = x W^T + bias with W = L U, where
//   L = I + strictly-lower part of `lower`        (unit lower-triangular),
//   U = strictly-upper part of `upper` + diag(s),  s = softplus(u_diag) + 1e-3 > 0.
// log|det| = sum(log s), the same for every sample. Entries of `lower` and `upper` outside their
// triangles are unused (masked out; their gradient is 0). W is built on the tape from the
// parameters (masks, softplus, matmul), so every gradient comes from the tape.
//
// At construction the layer is the identity: lower = upper = 0, bias = 0 and u_diag =
// softplus^-1(1 - 1e-3), so s = 1.
//
// The inverse solves W x = y - bias per row, L z = y - bias by forward substitution then U x = z
// by back substitution (solve_triangular, in double per row), differentiable like the forward.
#include "flowgrad/flows/bijector.hpp"

namespace flowgrad {

template <Scalar T>
class LULinear : public Bijector<T> {
 public:
  explicit LULinear(Index dim);
  std::string kind() const override { return "lu_linear"; }
  void named_parameters(const std::string& prefix, std::vector<NamedParameter<T>>& out) override;
  using Module<T>::named_parameters;
  LayerSpec spec() const override { return {kind(), {{"dim", std::to_string(this->dim())}}, {}}; }

  // W = L U as values, [dim, dim] row-major, in double.
  std::vector<double> weight() const;

  Parameter<T> lower, upper;  // [dim, dim]; only the strictly lower / upper triangle is used
  Parameter<T> u_diag;        // [dim]; diag(U) = softplus(u_diag) + 1e-3
  Parameter<T> bias;          // [dim]

  static constexpr double min_diag = 1e-3;

 protected:
  FlowResult<T> forward_impl(const Var<T>& x, const Var<T>& context) override;
  FlowResult<T> inverse_impl(const Var<T>& y, const Var<T>& context) override;

 private:
  Tensor<T> strict_lower_, strict_upper_, eye_;  // constant 0/1 masks, [dim, dim]
  // L and U as values in double, for weight().
  void factors(std::vector<double>& l, std::vector<double>& u) const;
};

extern template class LULinear<float>;
extern template class LULinear<double>;

}  // namespace flowgrad
