#pragma once
// Not installed. One ISA's kernels as a table of function pointers: each kernel file is compiled
// once per ISA (namespace flowgrad::isa_avx2, isa_avx512, or isa_native in a FLOWGRAD_NATIVE
// build), each copy fills a table (tensor/kernel_table.cpp), and the public entry points
// (tensor/dispatch.cpp) call through the table of the active ISA (tensor/isa.cpp), chosen once.
// No xsimd here: the portable files include this.
#include "flowgrad/tensor/activation.hpp"
#include "flowgrad/tensor/detail/adam_update.hpp"
#include "flowgrad/tensor/detail/gemm.hpp"
#include "flowgrad/tensor/detail/spline.hpp"
#include "flowgrad/tensor/isa.hpp"
#include "flowgrad/tensor/ops.hpp"
#include "flowgrad/tensor/tensor.hpp"

namespace flowgrad::detail {

// The signatures are those of the public functions of the same name (tensor/ops.hpp,
// detail/fused.hpp, detail/fused_block.hpp, detail/adam_update.hpp, detail/spline.hpp), but for
//   gemm:   gemm() with `prepacked`, op(B) packed whole by this ISA's pack_b, or null;
//   pack_b: packs op(B) [k x n] into panels for gemm's blocked path, resizing `panels`; false
//           (nothing packed) for the shapes gemm reads B in place.
template <class T>
struct KernelTable {
  Isa isa;
  void (*unary)(Unary, const Tensor<T>&, Tensor<T>&, T);
  void (*unary_backward)(Unary, const Tensor<T>&, const Tensor<T>&, const Tensor<T>&, Tensor<T>&,
                         T);
  void (*binary)(Binary, const Tensor<T>&, const Tensor<T>&, Tensor<T>&);
  void (*axpy)(T, const Tensor<T>&, Tensor<T>&);
  void (*accumulate_reduced)(const Tensor<T>&, Tensor<T>&);
  void (*sum)(const Tensor<T>&, Tensor<T>&);
  void (*sum_dim)(const Tensor<T>&, int, Tensor<T>&);
  void (*max)(const Tensor<T>&, Tensor<T>&);
  void (*max_dim)(const Tensor<T>&, int, Tensor<T>&);
  void (*logsumexp)(const Tensor<T>&, int, Tensor<T>&);
  bool (*all_finite)(const Tensor<T>&);
  void (*gemm)(Index, Index, Index, const T*, Index, const T*, Index, T*, Index, GemmOptions,
               const GemmEpilogue<T>&, const T* prepacked);
  bool (*pack_b)(Index k, Index n, const T* b, Index ldb, bool trans_b, Tensor<T>& panels);
  void (*bias_activation)(Tensor<T>&, const Tensor<T>&, Activation, T);
  void (*activation_backward)(const Tensor<T>&, const Tensor<T>&, Activation, T, Tensor<T>&,
                              Tensor<T>*);
  void (*bias_activation_block)(T*, Index, Index, Index, const T*, Activation, T);
  void (*activation_backward_block)(const T*, const T*, T*, Index, Index, Activation, T, T*);
  void (*transpose_bias_activation_block)(const T*, Index, Index, Index, const T*, Activation, T,
                                          T*, Index);
  void (*adam_update)(Tensor<T>&, const Tensor<T>&, Tensor<T>&, Tensor<T>&,
                      const AdamCoefficients&);
  void (*adam_apply)(const T*, const AdamTarget<T>&);
  void (*spline_forward)(const Tensor<T>&, const Tensor<T>&, const SplineSettings&, Tensor<T>&);
  void (*spline_backward)(const Tensor<T>&, const Tensor<T>&, const Tensor<T>&,
                          const SplineSettings&, Tensor<T>*, Tensor<T>*);
};

// The active ISA's table (tensor/isa.cpp).
template <class T>
const KernelTable<T>& kernels();

}  // namespace flowgrad::detail

// Each ISA's tables, defined by that ISA's copy of tensor/kernel_table.cpp. Constant-initialised,
// so that tensor/isa.cpp can list their addresses before any code runs (even from another file's
// static initialiser).
#define FLOWGRAD_DECLARE_KERNEL_TABLES(ns)                             \
  namespace flowgrad::ns {                                             \
  extern const ::flowgrad::detail::KernelTable<float> kernels_float;   \
  extern const ::flowgrad::detail::KernelTable<double> kernels_double; \
  }
FLOWGRAD_DECLARE_KERNEL_TABLES(isa_avx2)
FLOWGRAD_DECLARE_KERNEL_TABLES(isa_avx512)
FLOWGRAD_DECLARE_KERNEL_TABLES(isa_native)
#undef FLOWGRAD_DECLARE_KERNEL_TABLES
