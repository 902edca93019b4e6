#pragma once
// Not installed: the kernel behind Adam<T>::step (autodiff/optim.hpp).
// The elementwise part of an Adam step, one pass over a parameter and its two moment estimates.
#include "flowgrad/tensor/tensor.hpp"

namespace flowgrad {

struct AdamCoefficients {
  double beta1, beta2, eps, weight_decay;
  double step;         // lr / (1 - beta1^t)
  double inv_sqrt_c2;  // 1 / sqrt(1 - beta2^t)
};

// With g' = g + weight_decay * w: m = beta1 m + (1 - beta1) g'; v = beta2 v + (1 - beta2) g'^2;
// w -= step * m / (sqrt(v) * inv_sqrt_c2 + eps). All four tensors have the same number of
// elements (std::invalid_argument otherwise).
// Elements per thread before adam_update splits a parameter between threads.
inline constexpr Index adam_grain = Index(1) << 13;

template <Scalar T>
void adam_update(Tensor<T>& w, const Tensor<T>& g, Tensor<T>& m, Tensor<T>& v,
                 const AdamCoefficients& c);

}  // namespace flowgrad
