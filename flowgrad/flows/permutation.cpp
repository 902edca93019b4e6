#include "flowgrad/flows/permutation.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>

namespace flowgrad {

std::string to_string(PermutationMode mode) {
  return mode == PermutationMode::reverse ? "reverse" : "random";
}

PermutationMode permutation_mode_from_string(const std::string& name) {
  if (name == "reverse") return PermutationMode::reverse;
  if (name == "random") return PermutationMode::random;
  throw std::invalid_argument("unknown permutation mode '" + name + "' (reverse or random)");
}

template <Scalar T>
Permutation<T>::Permutation(Index dim, PermutationMode mode, Generator& gen)
    : Bijector<T>(dim), order(Shape{dim}), mode_(mode), checked_(Shape{dim}) {
  std::vector<Index> p(static_cast<std::size_t>(dim));
  if (mode == PermutationMode::reverse)
    for (Index j = 0; j < dim; ++j) p[static_cast<std::size_t>(j)] = dim - 1 - j;
  else
    p = gen.permutation(dim);
  for (Index j = 0; j < dim; ++j) order[j] = static_cast<T>(p[static_cast<std::size_t>(j)]);
  refresh();
}

template <Scalar T>
void Permutation<T>::named_buffers(const std::string& prefix, std::vector<NamedBuffer<T>>& out) {
  out.push_back({prefix + "order", &order});
}

template <Scalar T>
LayerSpec Permutation<T>::spec() const {
  return {kind(), {{"dim", std::to_string(this->dim())}, {"mode", to_string(mode_)}}, {}};
}

template <Scalar T>
void Permutation<T>::refresh() {
  const Index d = this->dim();
  if (order.numel() != d)
    throw std::invalid_argument(this->label() + ": order has shape " + order.shape().str() +
                                ", expected [" + std::to_string(d) + "]");
  // Until the check below passes, no order counts as checked (a failed check leaves the indices
  // half built).
  for (Index j = 0; j < checked_.numel(); ++j) checked_[j] = std::numeric_limits<T>::quiet_NaN();
  forward_idx_.assign(static_cast<std::size_t>(d), 0);
  inverse_idx_.assign(static_cast<std::size_t>(d), -1);
  for (Index j = 0; j < d; ++j) {
    const T v = order[j];
    if (!(v >= 0 && v < static_cast<T>(d)) || std::floor(v) != v ||
        inverse_idx_[static_cast<std::size_t>(v)] != -1)
      throw std::invalid_argument(this->label() + ": order is not a permutation of 0.." +
                                  std::to_string(d - 1) + " (entry " + std::to_string(j) + " is " +
                                  std::to_string(v) + ")");
    forward_idx_[static_cast<std::size_t>(j)] = static_cast<Index>(v);
    inverse_idx_[static_cast<std::size_t>(v)] = j;
  }
  for (Index j = 0; j < d; ++j) checked_[j] = order[j];
}

template <Scalar T>
const std::vector<Index>& Permutation<T>::indices() {
  bool same = order.numel() == checked_.numel();
  for (Index j = 0; same && j < order.numel(); ++j) same = order[j] == checked_[j];
  if (!same) refresh();
  return forward_idx_;
}

template <Scalar T>
FlowResult<T> Permutation<T>::forward_impl(const Var<T>& x, const Var<T>& /*context*/) {
  const Var<T> y = select_columns(x, indices());
  return {y, x.tape().full(Shape{x.rows(), 1}, T(0))};
}

template <Scalar T>
FlowResult<T> Permutation<T>::inverse_impl(const Var<T>& y, const Var<T>& /*context*/) {
  indices();
  const Var<T> x = select_columns(y, inverse_idx_);
  return {x, y.tape().full(Shape{y.rows(), 1}, T(0))};
}

template class Permutation<float>;
template class Permutation<double>;

}  // namespace flowgrad
