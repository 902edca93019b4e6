#pragma once
// The standard-normal base distribution N(0, I) in `dim` dimensions.
#include "flowgrad/autodiff/ops.hpp"
#include "flowgrad/tensor/random.hpp"

namespace flowgrad {

template <Scalar T>
class StandardNormal {
 public:
  explicit StandardNormal(Index dim) : dim_(dim) {}
  Index dim() const { return dim_; }
  // log N(z; 0, I) per sample: [batch, 1].
  Var<T> log_prob(const Var<T>& z) const;
  Tensor<T> sample(Index n, Generator& gen) const { return gen.normal<T>(Shape{n, dim_}); }

 private:
  Index dim_;
};

extern template class StandardNormal<float>;
extern template class StandardNormal<double>;

}  // namespace flowgrad
