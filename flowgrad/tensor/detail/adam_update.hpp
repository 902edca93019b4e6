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

// A parameter's count values and its two moments, for a backward rule that applies adam_update's
// rule to the parameter's gradient as soon as it has it whole (Adam::backward_step).
template <class T>
struct AdamTarget {
  T* value;
  T* exp_avg;
  T* exp_avg_sq;
  Index count;
  AdamCoefficients c;
};

// adam_update() with the gradient g laid out as the target's values: the same result for each
// element, split between threads in the same way.
template <class T>
void adam_apply(const T* g, const AdamTarget<T>& target);

}  // namespace flowgrad
