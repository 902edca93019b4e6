// gemm()'s thin-shape path: n, m or k of a few, the shapes of small 2-D flows, where packing and
// tile edges would cost more than the arithmetic. op(B) is read in place, or copied whole when it
// is that small. Compiled once per ISA.
#include "flowgrad/tensor/detail/isa_prelude.hpp"

#include "flowgrad/tensor/detail/gemm_paths.hpp"
#include "flowgrad/tensor/detail/gemm_thin_kernels.hpp"
#include "flowgrad/tensor/detail/isa_kernels.hpp"

namespace flowgrad::FLOWGRAD_ISA_NS {
namespace {

using gemm_detail::in_registers;
using gemm_detail::Out;
using gemm_detail::rows_of;
using gemm_detail::scratch;
using gemm_detail::View;

// The views go by reference: passed by value, g++ builds each one on the stack with scalar stores
// and reloads it with one vector load, a stalled store forwarding that is a large part of a tiny
// product (bench/results/gemm_tuning.md).
template <class T, int NN>
void small_n_fixed(Index m, Index k, const View<T>& a, const View<T>& b, const Out<T>& c,
                   bool accumulate, int nt) {
  if (a.cs == 1) {
    // Dot-product form: op(B)'s columns must be contiguous; pack them unless B is transposed.
    const T* cols[NN];
    if (b.rs == 1) {
      for (int j = 0; j < NN; ++j) cols[j] = b.at(0, j);
    } else {
      T* packed = scratch<T>(1, NN * k);
      for (int j = 0; j < NN; ++j) {
        for (Index p = 0; p < k; ++p) packed[j * k + p] = b(p, j);
        cols[j] = packed + j * k;
      }
    }
    // Chunks of whole 8-row groups: every row goes through the same dot_rows<R> as on one thread.
    simd::parallel_for(nt, m, 8, [&](Index i0, Index i1) {
      gemm_detail::small_n_dot<T, NN>(i1 - i0, k, rows_of(a, i0), cols, rows_of(c, i0), accumulate);
    });
  } else {
    // Chunks of whole batches of rows, each summed into its thread's own scratch.
    simd::parallel_for(nt, m, simd::width<T>, [&](Index i0, Index i1) {
      gemm_detail::small_n_axpy<T, NN>(i1 - i0, k, rows_of(a, i0), b, rows_of(c, i0), accumulate,
                                       scratch<T>(1, NN * (i1 - i0)));
    });
  }
}

template <class T, int K>
void small_k_fixed(Index m, Index n, View<T> a, const T* packed, Index ldp, T* c, Index ldc,
                   bool accumulate, const GemmEpilogue<T>& ep, int nt) {
  // Chunks of whole 4-row groups, as on one thread; with an epilogue, taken kEpilogueRows rows at
  // a time so that each block of C gets it while still in L1.
  constexpr Index kEpilogueRows = 64;
  const Index step = ep.bias ? kEpilogueRows : m;
  simd::parallel_for(nt, m, 4, [&](Index i0, Index i1) {
    for (Index r0 = i0; r0 < i1; r0 += step) {
      const Index rows = std::min(step, i1 - r0);
      T* cr = c + r0 * ldc;
      auto run = [&](const auto& epi) {
        gemm_detail::small_k<T, K>(rows, n, rows_of(a, r0), packed, ldp, cr, ldc, accumulate, epi);
      };
      // In registers, the epilogue covers whole batches of columns; a last partial one gets the
      // pass.
      Index done = 0;
      if (ep.bias && in_registers(ep, ep.bias, run))
        done = n / simd::width<T> * simd::width<T>;
      else
        run(gemm_detail::Plain{});
      if (ep.bias && done < n)
        detail::bias_activation_block(cr + done, ldc, rows, n - done, ep.bias + done, ep.act,
                                      ep.slope);
    }
  });
}

}  // namespace

namespace gemm_detail {

template <class T>
void gemm_small_n(Index m, Index n, Index k, const View<T>& a, const View<T>& b, const Out<T>& c,
                  bool accumulate, int nt) {
  switch (n) {
    case 1:
      return small_n_fixed<T, 1>(m, k, a, b, c, accumulate, nt);
    case 2:
      return small_n_fixed<T, 2>(m, k, a, b, c, accumulate, nt);
    case 3:
      return small_n_fixed<T, 3>(m, k, a, b, c, accumulate, nt);
    default:
      return small_n_fixed<T, 4>(m, k, a, b, c, accumulate, nt);
  }
}

template <class T>
void gemm_small_k(Index m, Index n, Index k, View<T> a, View<T> b, T* c, Index ldc, bool accumulate,
                  const GemmEpilogue<T>& ep, int nt) {
  constexpr Index w = simd::width<T>;
  const Index ldp = (n + w - 1) / w * w;
  T* packed = scratch<T>(1, k * ldp);
  for (Index p = 0; p < k; ++p) {
    T* row = packed + p * ldp;
    for (Index j = 0; j < n; ++j) row[j] = b(p, j);
    std::fill(row + n, row + ldp, T(0));
  }
  switch (k) {
    case 1:
      return small_k_fixed<T, 1>(m, n, a, packed, ldp, c, ldc, accumulate, ep, nt);
    case 2:
      return small_k_fixed<T, 2>(m, n, a, packed, ldp, c, ldc, accumulate, ep, nt);
    case 3:
      return small_k_fixed<T, 3>(m, n, a, packed, ldp, c, ldc, accumulate, ep, nt);
    default:
      return small_k_fixed<T, 4>(m, n, a, packed, ldp, c, ldc, accumulate, ep, nt);
  }
}

template void gemm_small_n(Index, Index, Index, const View<float>&, const View<float>&,
                           const Out<float>&, bool, int);
template void gemm_small_n(Index, Index, Index, const View<double>&, const View<double>&,
                           const Out<double>&, bool, int);
template void gemm_small_k(Index, Index, Index, View<float>, View<float>, float*, Index, bool,
                           const GemmEpilogue<float>&, int);
template void gemm_small_k(Index, Index, Index, View<double>, View<double>, double*, Index, bool,
                           const GemmEpilogue<double>&, int);

}  // namespace gemm_detail
}  // namespace flowgrad::FLOWGRAD_ISA_NS
