// This ISA's kernels as one table (detail/kernel_table.hpp). Compiled once per ISA, like the
// kernel files whose functions it lists.
#include "flowgrad/tensor/detail/isa_prelude.hpp"

#include "flowgrad/tensor/detail/isa_kernels.hpp"
#include "flowgrad/tensor/detail/simd.hpp"

namespace flowgrad::FLOWGRAD_ISA_NS {

namespace {
template <class T>
constexpr ::flowgrad::detail::KernelTable<T> make_table() {
  return {
      simd::isa,
      &unary<T>,
      &unary_backward<T>,
      &binary<T>,
      &axpy<T>,
      &accumulate_reduced<T>,
      &sum<T>,
      &sum_dim<T>,
      &max<T>,
      &max_dim<T>,
      &logsumexp<T>,
      &all_finite<T>,
      &gemm<T>,
      &pack_b<T>,
      &bias_activation<T>,
      &activation_backward<T>,
      &detail::bias_activation_block<T>,
      &detail::activation_backward_block<T>,
      &detail::transpose_bias_activation_block<T>,
      &adam_update<T>,
      &adam_apply<T>,
      &spline_forward<T>,
      &spline_backward<T>,
  };
}
}  // namespace

constinit const ::flowgrad::detail::KernelTable<float> kernels_float = make_table<float>();
constinit const ::flowgrad::detail::KernelTable<double> kernels_double = make_table<double>();

}  // namespace flowgrad::FLOWGRAD_ISA_NS
