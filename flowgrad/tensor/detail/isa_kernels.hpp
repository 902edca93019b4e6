#pragma once
// Not installed. The kernels that one ISA's copy of the kernel files defines, declared in that
// ISA's namespace (detail/isa_namespace.hpp): the entries of its KernelTable
// (tensor/kernel_table.cpp), and what the kernel files call of each other's (gemm applies
// fused.cpp's blocks), so that those calls stay inside the ISA rather than go through the table.
#include "flowgrad/tensor/detail/isa_namespace.hpp"
#include "flowgrad/tensor/detail/kernel_table.hpp"

namespace flowgrad::FLOWGRAD_ISA_NS {

// elementwise.cpp
template <Scalar T>
void unary(Unary f, const Tensor<T>& x, Tensor<T>& y, T p);
template <Scalar T>
void unary_backward(Unary f, const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& gy,
                    Tensor<T>& gx, T p);
template <Scalar T>
void binary(Binary f, const Tensor<T>& a, const Tensor<T>& b, Tensor<T>& out);
template <Scalar T>
void axpy(T alpha, const Tensor<T>& x, Tensor<T>& acc);
template <Scalar T>
void accumulate_reduced(const Tensor<T>& g, Tensor<T>& acc);

// reduce.cpp
template <Scalar T>
void sum(const Tensor<T>& x, Tensor<T>& out);
template <Scalar T>
void sum_dim(const Tensor<T>& x, int dim, Tensor<T>& out);
template <Scalar T>
void max(const Tensor<T>& x, Tensor<T>& out);
template <Scalar T>
void max_dim(const Tensor<T>& x, int dim, Tensor<T>& out);
template <Scalar T>
void logsumexp(const Tensor<T>& x, int dim, Tensor<T>& out);
template <Scalar T>
bool all_finite(const Tensor<T>& x);

// gemm.cpp and gemm_blocked.cpp
template <class T>
void gemm(Index m, Index n, Index k, const T* a, Index lda, const T* b, Index ldb, T* c, Index ldc,
          GemmOptions opt, const GemmEpilogue<T>& ep, const T* prepacked);
template <class T>
bool pack_b(Index k, Index n, const T* b, Index ldb, bool trans_b, Tensor<T>& panels);

// fused.cpp
template <Scalar T>
void bias_activation(Tensor<T>& y, const Tensor<T>& bias, Activation act, T slope);
template <Scalar T>
void activation_backward(const Tensor<T>& y, const Tensor<T>& gy, Activation act, T slope,
                         Tensor<T>& gz, Tensor<T>* bias_grad);
namespace detail {
template <class T>
void bias_activation_block(T* y, Index ldy, Index rows, Index cols, const T* bias, Activation act,
                           T slope);
template <class T>
void activation_backward_block(const T* y, const T* gy, T* gz, Index rows, Index cols,
                               Activation act, T slope, T* col_sums);
template <class T>
void transpose_bias_activation_block(const T* ct, Index ldct, Index rows, Index cols, const T* bias,
                                     Activation act, T slope, T* y, Index ldy);
}  // namespace detail

// spline.cpp
template <class T>
void spline_forward(const Tensor<T>& x, const Tensor<T>& params,
                    const ::flowgrad::detail::SplineSettings& s, Tensor<T>& out);
template <class T>
void spline_backward(const Tensor<T>& x, const Tensor<T>& params, const Tensor<T>& grad,
                     const ::flowgrad::detail::SplineSettings& s, Tensor<T>* gx, Tensor<T>* gp);
// adam_update.cpp
template <Scalar T>
void adam_update(Tensor<T>& w, const Tensor<T>& g, Tensor<T>& m, Tensor<T>& v,
                 const AdamCoefficients& c);
template <class T>
void adam_apply(const T* g, const AdamTarget<T>& target);

}  // namespace flowgrad::FLOWGRAD_ISA_NS
