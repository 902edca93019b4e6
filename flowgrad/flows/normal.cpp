#include "flowgrad/flows/normal.hpp"

#include <cmath>
#include <numbers>
#include <stdexcept>

namespace flowgrad {

template <Scalar T>
Var<T> StandardNormal<T>::log_prob(const Var<T>& z) const {
  if (z.cols() != dim_)
    throw std::invalid_argument("normal log_prob: input " + z.shape().str() + " for dimension " +
                                std::to_string(dim_));
  const T log_norm =
      static_cast<T>(-0.5 * static_cast<double>(dim_) * std::log(2 * std::numbers::pi));
  return affine(sum(square(z), 1), T(-0.5), log_norm);
}

template class StandardNormal<float>;
template class StandardNormal<double>;

}  // namespace flowgrad
