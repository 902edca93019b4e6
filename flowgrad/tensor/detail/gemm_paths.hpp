#pragma once
// What gemm()'s dispatcher (tensor/gemm.cpp) and its two paths share: the operand views, the
// thresholds that pick a path, the per-thread scratch, the epilogues the kernels apply in
// registers, and the entry point of each path: the blocked one (tensor/gemm_blocked.cpp) and the
// thin-shape one (tensor/gemm_thin.cpp).
#include <algorithm>
#include <cstddef>
#include <memory>
#include <new>

#include "flowgrad/tensor/detail/gemm.hpp"
#include "flowgrad/tensor/detail/simd.hpp"
#include "flowgrad/tensor/detail/unary_rules.hpp"

namespace flowgrad::FLOWGRAD_ISA_NS::gemm_detail {

template <class T>
using V = simd::batch<T>;

// An operand read in place: element (i, j) of op(X) is p[i * rs + j * cs]. A transpose only swaps
// the strides, which is how every transpose form is read without copying the matrix.
template <class T>
struct View {
  const T* p;
  Index rs, cs;
  T operator()(Index i, Index j) const { return p[i * rs + j * cs]; }
  const T* at(Index i, Index j) const { return p + i * rs + j * cs; }
};

// An output with arbitrary strides, so the small-m path can write C^T into C.
template <class T>
struct Out {
  T* p;
  Index rs, cs;
  T& operator()(Index i, Index j) const { return p[i * rs + j * cs]; }
};

// Rows [i0, i1) of op(A) and of C.
template <class T>
View<T> rows_of(View<T> a, Index i0) {
  return View<T>{a.at(i0, 0), a.rs, a.cs};
}
template <class T>
Out<T> rows_of(Out<T> c, Index i0) {
  return Out<T>{&c(i0, 0), c.rs, c.cs};
}

// Thin-shape thresholds: n (or m) up to this uses the dot/axpy loops; k up to kSmallK uses the
// row-combination loop.
constexpr Index kSmallN = 4;
constexpr Index kSmallK = 4;

// Per-thread scratch that only grows, 64-byte aligned: after the first call of a given size, gemm
// allocates nothing. Inline, so that both paths share one set of buffers per thread.
template <class T>
inline T* scratch(int slot, Index count) {
  struct Free {
    void operator()(T* p) const { ::operator delete[](p, std::align_val_t{64}); }
  };
  struct Buffer {
    std::unique_ptr<T[], Free> data;
    Index capacity = 0;
  };
  thread_local Buffer buffers[2];
  Buffer& buf = buffers[slot];
  if (buf.capacity < count) {
    const Index grown = std::max(count, buf.capacity * 2);
    buf.data.reset(static_cast<T*>(
        ::operator new[](static_cast<std::size_t>(grown) * sizeof(T), std::align_val_t{64})));
    buf.capacity = grown;
  }
  return buf.data.get();
}

// --- Epilogues: what a kernel does to a finished batch of C (at column j of its tile) ----------
struct Plain {
  template <class T>
  V<T> operator()(V<T> v, Index) const {
    return v;
  }
};

// act(v + bias[j..]) in registers, in the operations and order of bias_activation_block's pass
// over memory, so with the same bits; it saves that pass's load and store of every value.
template <class T, Activation A>
struct BiasActivation {
  const T* bias;  // the tile's first column
  V<T> slope;
  V<T> operator()(V<T> v, Index j) const {
    // Opaque to the compiler, which under -ffp-contract=fast (g++'s default outside ISO mode)
    // would contract a product in v with the bias add into one FMA, rounding once where the pass
    // over memory rounds twice.
    typename V<T>::register_type r = v;
    asm("" : "+x"(r));
    return detail::activate<A>(V<T>(r) + V<T>::load_unaligned(bias + j), slope);
  }
};

// Calls body(epi) with the epilogue as a BiasActivation, to be applied in the kernels' registers,
// and returns true, for the piecewise-linear activations; returns false for the transcendental
// ones, which keep the pass over each finished block: their cost dwarfs that pass, and their code
// would be copied into every kernel. bias is the tile's first column.
template <class T, class Body>
bool in_registers(const GemmEpilogue<T>& ep, const T* bias, Body&& body) {
  const simd::batch<T> slope(ep.slope);
  switch (ep.act) {
    case Activation::none:
      body(BiasActivation<T, Activation::none>{bias, slope});
      return true;
    case Activation::relu:
      body(BiasActivation<T, Activation::relu>{bias, slope});
      return true;
    case Activation::leaky_relu:
      body(BiasActivation<T, Activation::leaky_relu>{bias, slope});
      return true;
    default:
      return false;
  }
}

// --- The paths, each instantiated for float and double in its own file --------------------------

// Blocked path (tensor/gemm_blocked.cpp), any shape, on nt threads. ColMajorA: op(A) is the
// transpose of the stored A. prepacked, when given, is op(B) packed whole (see PackedB).
template <class T, bool ColMajorA>
void gemm_blocked(Index m, Index n, Index k, View<T> a, Index lda, View<T> b, T* c, Index ldc,
                  bool accumulate, const GemmEpilogue<T>& ep, const T* prepacked, int nt);

// Thin paths (tensor/gemm_thin.cpp). n <= kSmallN: C written through c's strides, so that a short
// m can go as C^T. No epilogue: the caller applies it.
template <class T>
void gemm_small_n(Index m, Index n, Index k, const View<T>& a, const View<T>& b, const Out<T>& c,
                  bool accumulate, int nt);

// k <= kSmallK, with the epilogue.
template <class T>
void gemm_small_k(Index m, Index n, Index k, View<T> a, View<T> b, T* c, Index ldc, bool accumulate,
                  const GemmEpilogue<T>& ep, int nt);

}  // namespace flowgrad::FLOWGRAD_ISA_NS::gemm_detail
