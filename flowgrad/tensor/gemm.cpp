// gemm() for one ISA: the choice between the register-blocked path (tensor/gemm_blocked.cpp) and
// the direct loops for the thin shapes of small 2-D flows (tensor/gemm_thin.cpp; k, n or m of a
// few), where packing and tile edges would cost more than the arithmetic. The public entry points
// are in tensor/dispatch.cpp.
#include "flowgrad/tensor/detail/isa_prelude.hpp"

#include "flowgrad/tensor/detail/gemm_paths.hpp"
#include "flowgrad/tensor/detail/isa_kernels.hpp"

namespace flowgrad::FLOWGRAD_ISA_NS {
namespace {

using gemm_detail::kSmallK;
using gemm_detail::kSmallN;
using gemm_detail::Out;
using gemm_detail::View;

// Intra-op parallelism: a product is split between threads only when each thread gets at least
// this many multiply-adds, enough to outweigh a fork/join; the thin paths, bound by loads and
// stores rather than FMAs, take longer per multiply-add and so split sooner (the measurements are
// in bench/results/gemm_tuning.md). The split is always over independent blocks of C (rows, or
// column panels), so no element is written by two threads, nothing is reduced afterwards, and
// every element is summed in the same order as on one thread: the result is bit-identical at any
// thread count.
constexpr Index kGemmGrain = Index(1) << 18;
constexpr Index kGemmGrainThin = Index(1) << 16;

}  // namespace

template <class T>
void gemm(Index m, Index n, Index k, const T* a, Index lda, const T* b, Index ldb, T* c, Index ldc,
          GemmOptions opt, const GemmEpilogue<T>& ep, const T* prepacked) {
  if (m <= 0 || n <= 0) return;
  // The thin paths below write C in one go; the epilogue then takes one pass over it, which for
  // their few rows or columns costs little.
  auto finish = [&] {
    if (ep.bias) detail::bias_activation_block(c, ldc, m, n, ep.bias, ep.act, ep.slope);
  };
  if (k <= 0) {
    if (!opt.accumulate)
      for (Index i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, T(0));
    return finish();
  }
  const View<T> va = opt.trans_a ? View<T>{a, 1, lda} : View<T>{a, lda, 1};
  const View<T> vb = opt.trans_b ? View<T>{b, 1, ldb} : View<T>{b, ldb, 1};
  const int nt = simd::threads_for(m * n * k, kGemmGrain);
  const int nt_thin = simd::threads_for(m * n * k, kGemmGrainThin);
  if (n <= kSmallN) {
    gemm_detail::gemm_small_n(m, n, k, va, vb, Out<T>{c, ldc, 1}, opt.accumulate, nt_thin);
    return finish();
  }
  // C^T = op(B)^T op(A)^T turns a short m into a short n: same loops, C written transposed.
  if (m <= kSmallN) {
    gemm_detail::gemm_small_n(n, m, k, View<T>{b, vb.cs, vb.rs}, View<T>{a, va.cs, va.rs},
                              Out<T>{c, 1, ldc}, opt.accumulate, nt_thin);
    return finish();
  }
  if (k <= kSmallK)
    return gemm_detail::gemm_small_k(m, n, k, va, vb, c, ldc, opt.accumulate, ep, nt_thin);
  if (opt.trans_a)
    gemm_detail::gemm_blocked<T, true>(m, n, k, va, lda, vb, c, ldc, opt.accumulate, ep, prepacked,
                                       nt);
  else
    gemm_detail::gemm_blocked<T, false>(m, n, k, va, lda, vb, c, ldc, opt.accumulate, ep, prepacked,
                                        nt);
}

template void gemm(Index, Index, Index, const float*, Index, const float*, Index, float*, Index,
                   GemmOptions, const GemmEpilogue<float>&, const float*);
template void gemm(Index, Index, Index, const double*, Index, const double*, Index, double*, Index,
                   GemmOptions, const GemmEpilogue<double>&, const double*);

}  // namespace flowgrad::FLOWGRAD_ISA_NS
