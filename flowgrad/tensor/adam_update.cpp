// The elementwise pass of an Adam step (detail/adam_update.hpp). Compiled once per ISA.
#include "flowgrad/tensor/detail/isa_prelude.hpp"

#include "flowgrad/tensor/detail/adam_rule.hpp"
#include "flowgrad/tensor/detail/isa_kernels.hpp"
#include "flowgrad/tensor/detail/simd.hpp"

namespace flowgrad::FLOWGRAD_ISA_NS {

template <class T>
void adam_apply(const T* g, const AdamTarget<T>& t) {
  const detail::AdamRule<T> rule(t.c);
  // Chunks of whole batches: each element is updated by the same code at any thread count.
  simd::parallel_for(simd::threads_for(t.count, adam_grain), t.count, simd::width<T>,
                     [&](Index b, Index e) {
                       rule.run(t.value + b, g + b, t.exp_avg + b, t.exp_avg_sq + b, e - b);
                     });
}

template <Scalar T>
void adam_update(Tensor<T>& w, const Tensor<T>& g, Tensor<T>& m, Tensor<T>& v,
                 const AdamCoefficients& c) {
  const Index n = w.numel();
  if (g.numel() != n || m.numel() != n || v.numel() != n)
    throw std::invalid_argument("adam_update: parameter " + w.shape().str() + ", gradient " +
                                g.shape().str() + ", moments " + m.shape().str() + " and " +
                                v.shape().str() + " differ in size");
  FLOWGRAD_ISA_NS::adam_apply(g.data(), AdamTarget<T>{w.data(), m.data(), v.data(), n, c});
}

template void adam_apply(const float*, const AdamTarget<float>&);
template void adam_apply(const double*, const AdamTarget<double>&);
template void adam_update(Tensor<float>&, const Tensor<float>&, Tensor<float>&, Tensor<float>&,
                          const AdamCoefficients&);
template void adam_update(Tensor<double>&, const Tensor<double>&, Tensor<double>&, Tensor<double>&,
                          const AdamCoefficients&);

}  // namespace flowgrad::FLOWGRAD_ISA_NS
