#include "flowgrad/flows/bijector.hpp"

#include <cmath>
#include <stdexcept>

#include "flowgrad/tensor/ops.hpp"

namespace flowgrad {

template <Scalar T>
LayerSpec Bijector<T>::spec() const {
  throw std::logic_error(
      label() + ": this layer has no spec(), so save_flow cannot store it; use save_module");
}

template <Scalar T>
void Bijector<T>::check_input(const char* direction, const Var<T>& v) const {
  const Tensor<T>& x = v.value();
  if (x.shape().rank() != 2 || x.cols() != dim_)
    throw std::invalid_argument(label() + " " + direction + ": input of shape " + x.shape().str() +
                                ", expected [batch, " + std::to_string(dim_) + "]");
  if (!checks_values() || all_finite(x)) return;
  for (Index i = 0; i < x.numel(); ++i)
    if (!std::isfinite(x[i]))
      throw std::domain_error(label() + " " + direction + ": input has " +
                              (std::isnan(x[i]) ? "NaN" : "inf") + " at row " +
                              std::to_string(i / dim_) + ", column " + std::to_string(i % dim_));
}

template <Scalar T>
void Bijector<T>::check_context(const char* direction, const Var<T>& v,
                                const Var<T>& context) const {
  const Index want = context_dim();
  if (want == 0) return;
  if (!context.defined())
    throw std::invalid_argument(label() + " " + direction + ": needs a context of " +
                                std::to_string(want) + " columns (the model is conditional)");
  const Tensor<T>& c = context.value();
  if (c.shape().rank() != 2 || c.cols() != want || c.rows() != v.rows())
    throw std::invalid_argument(label() + " " + direction + ": context of shape " +
                                c.shape().str() + ", expected [" + std::to_string(v.rows()) + ", " +
                                std::to_string(want) + "]");
  if (!checks_values() || all_finite(c)) return;
  for (Index i = 0; i < c.numel(); ++i)
    if (!std::isfinite(c[i]))
      throw std::domain_error(label() + " " + direction + ": context has " +
                              (std::isnan(c[i]) ? "NaN" : "inf") + " at row " +
                              std::to_string(i / want) + ", column " + std::to_string(i % want));
}

template <Scalar T>
FlowResult<T> Bijector<T>::forward(const Var<T>& x, const Var<T>& context) {
  check_input("forward", x);
  check_context("forward", x, context);
  return forward_impl(x, context);
}

template <Scalar T>
FlowResult<T> Bijector<T>::inverse(const Var<T>& y, const Var<T>& context) {
  check_input("inverse", y);
  check_context("inverse", y, context);
  return inverse_impl(y, context);
}

template <Scalar T>
Var<T> Bijector<T>::per_sample(const Var<T>& log_det_row, Index batch) {
  Tape<T>& t = log_det_row.tape();
  return add(t.full(Shape{batch, 1}, T(0)), log_det_row);
}

template class Bijector<float>;
template class Bijector<double>;

}  // namespace flowgrad
