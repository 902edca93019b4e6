// The elementwise pass of an Adam step (detail/adam_update.hpp). Compiled once per ISA.
#include "flowgrad/tensor/detail/isa_prelude.hpp"

#include "flowgrad/tensor/detail/adam_rule.hpp"
#include "flowgrad/tensor/detail/isa_kernels.hpp"
#include "flowgrad/tensor/detail/simd.hpp"

namespace flowgrad::FLOWGRAD_ISA_NS {

template <Scalar T>
void adam_update(Tensor<T>& w, const Tensor<T>& g, Tensor<T>& m, Tensor<T>& v,
                 const AdamCoefficients& c) {
  const Index n = w.numel();
  if (g.numel() != n || m.numel() != n || v.numel() != n)
    throw std::invalid_argument("adam_update: parameter " + w.shape().str() + ", gradient " +
                                g.shape().str() + ", moments " + m.shape().str() + " and " +
                                v.shape().str() + " differ in size");
  const detail::AdamRule<T> rule(c);
  T* wp = w.data();
  const T* gp = g.data();
  T* mp = m.data();
  T* vp = v.data();
  // Chunks of whole batches: each element is updated by the same code at any thread count.
  simd::parallel_for(simd::threads_for(n, adam_grain), n, simd::width<T>,
                     [&](Index b, Index e) { rule.run(wp + b, gp + b, mp + b, vp + b, e - b); });
}

template <class T>
void adam_block(const T* g, Index ldg, Index rows, Index cols, const AdamTarget<T>& target) {
  const detail::AdamRule<T> rule(target.c);
  if (ldg == cols && target.ld == cols) {  // one run, split as adam_update splits
    simd::parallel_for(simd::threads_for(rows * cols, adam_grain), rows * cols, simd::width<T>,
                       [&](Index b, Index e) {
                         rule.run(target.value + b, g + b, target.exp_avg + b,
                                  target.exp_avg_sq + b, e - b);
                       });
    return;
  }
  for (Index i = 0; i < rows; ++i)
    rule.run(target.value + i * target.ld, g + i * ldg, target.exp_avg + i * target.ld,
             target.exp_avg_sq + i * target.ld, cols);
}

template void adam_block(const float*, Index, Index, Index, const AdamTarget<float>&);
template void adam_block(const double*, Index, Index, Index, const AdamTarget<double>&);
template void adam_update(Tensor<float>&, const Tensor<float>&, Tensor<float>&, Tensor<float>&,
                          const AdamCoefficients&);
template void adam_update(Tensor<double>&, const Tensor<double>&, Tensor<double>&, Tensor<double>&,
                          const AdamCoefficients&);

}  // namespace flowgrad::FLOWGRAD_ISA_NS
