// The public kernel entry points: each calls the active ISA's copy through its table
// (detail/kernel_table.hpp), one indirect call, so that the rest of the library is compiled once.
// Compiled with the portable flags.
#include <stdexcept>
#include <string>

#include "flowgrad/tensor/detail/adam_update.hpp"
#include "flowgrad/tensor/detail/fused.hpp"
#include "flowgrad/tensor/detail/fused_block.hpp"
#include "flowgrad/tensor/detail/gemm.hpp"
#include "flowgrad/tensor/detail/kernel_table.hpp"
#include "flowgrad/tensor/detail/spline.hpp"
#include "flowgrad/tensor/ops.hpp"

namespace flowgrad {

using detail::kernels;

template <Scalar T>
void unary(Unary f, const Tensor<T>& x, Tensor<T>& y, T p) {
  kernels<T>().unary(f, x, y, p);
}

template <Scalar T>
void unary_backward(Unary f, const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& gy,
                    Tensor<T>& gx, T p) {
  kernels<T>().unary_backward(f, x, y, gy, gx, p);
}

template <Scalar T>
void binary(Binary f, const Tensor<T>& a, const Tensor<T>& b, Tensor<T>& out) {
  kernels<T>().binary(f, a, b, out);
}

template <Scalar T>
void axpy(T alpha, const Tensor<T>& x, Tensor<T>& acc) {
  kernels<T>().axpy(alpha, x, acc);
}

template <Scalar T>
void accumulate_reduced(const Tensor<T>& g, Tensor<T>& acc) {
  kernels<T>().accumulate_reduced(g, acc);
}

template <Scalar T>
void sum(const Tensor<T>& x, Tensor<T>& out) {
  kernels<T>().sum(x, out);
}

template <Scalar T>
void sum(const Tensor<T>& x, int dim, Tensor<T>& out) {
  kernels<T>().sum_dim(x, dim, out);
}

namespace {
template <Scalar T>
void require_nonempty(const char* op, const Tensor<T>& x) {
  if (x.empty()) throw std::invalid_argument(std::string(op) + ": empty tensor " + x.shape().str());
}
}  // namespace

template <Scalar T>
void mean(const Tensor<T>& x, Tensor<T>& out) {
  require_nonempty("mean", x);
  sum(x, out);
  out[0] /= static_cast<T>(x.numel());
}

template <Scalar T>
void mean(const Tensor<T>& x, int dim, Tensor<T>& out) {
  require_nonempty("mean", x);
  sum(x, dim, out);
  const T inv = T(1) / static_cast<T>(dim == 0 ? x.rows() : x.cols());
  for (Index i = 0; i < out.numel(); ++i) out[i] *= inv;
}

template <Scalar T>
void max(const Tensor<T>& x, Tensor<T>& out) {
  kernels<T>().max(x, out);
}

template <Scalar T>
void max(const Tensor<T>& x, int dim, Tensor<T>& out) {
  kernels<T>().max_dim(x, dim, out);
}

template <Scalar T>
void logsumexp(const Tensor<T>& x, int dim, Tensor<T>& out) {
  kernels<T>().logsumexp(x, dim, out);
}

template <Scalar T>
bool all_finite(const Tensor<T>& x) {
  return kernels<T>().all_finite(x);
}

template <class T>
void gemm(Index m, Index n, Index k, const T* a, Index lda, const T* b, Index ldb, T* c, Index ldc,
          GemmOptions opt, const GemmEpilogue<T>& ep) {
  kernels<T>().gemm(m, n, k, a, lda, b, ldb, c, ldc, opt, ep, nullptr);
}

template <class T>
void gemm(Index m, Index n, Index k, const T* a, Index lda, const PackedB<T>& b, T* c, Index ldc,
          GemmOptions opt, const GemmEpilogue<T>& ep) {
  if (n != b.n() || k != b.k() || opt.trans_b != b.trans_b())
    throw std::invalid_argument("gemm: B was packed as " + std::to_string(b.k()) + " x " +
                                std::to_string(b.n()) + (b.trans_b() ? " transposed" : "") +
                                ", the product needs " + std::to_string(k) + " x " +
                                std::to_string(n) + (opt.trans_b ? " transposed" : ""));
  const auto& kt = kernels<T>();
  // Panels packed by another ISA have another layout (set_isa() ran in between): B in place.
  kt.gemm(m, n, k, a, lda, b.b(), b.ldb(), c, ldc, opt, ep,
          b.isa() == kt.isa ? b.panels() : nullptr);
}

template <class T>
void PackedB<T>::pack(Index k, Index n, const T* b, Index ldb, bool trans_b) {
  b_ = b;
  k_ = k;
  n_ = n;
  ldb_ = ldb;
  trans_b_ = trans_b;
  const auto& kt = kernels<T>();
  isa_ = kt.isa;
  has_panels_ = kt.pack_b(k, n, b, ldb, trans_b, panels_);
}

template <Scalar T>
void bias_activation(Tensor<T>& y, const Tensor<T>& bias, Activation act, T slope) {
  kernels<T>().bias_activation(y, bias, act, slope);
}

template <Scalar T>
void activation_backward(const Tensor<T>& y, const Tensor<T>& gy, Activation act, T slope,
                         Tensor<T>& gz, Tensor<T>* bias_grad) {
  kernels<T>().activation_backward(y, gy, act, slope, gz, bias_grad);
}

template <Scalar T>
void adam_update(Tensor<T>& w, const Tensor<T>& g, Tensor<T>& m, Tensor<T>& v,
                 const AdamCoefficients& c) {
  kernels<T>().adam_update(w, g, m, v, c);
}

template <class T>
void adam_apply(const T* g, const AdamTarget<T>& target) {
  kernels<T>().adam_apply(g, target);
}

namespace detail {

template <class T>
void bias_activation_block(T* y, Index ldy, Index rows, Index cols, const T* bias, Activation act,
                           T slope) {
  kernels<T>().bias_activation_block(y, ldy, rows, cols, bias, act, slope);
}

template <class T>
void activation_backward_block(const T* y, const T* gy, T* gz, Index rows, Index cols,
                               Activation act, T slope, T* col_sums) {
  kernels<T>().activation_backward_block(y, gy, gz, rows, cols, act, slope, col_sums);
}

template <class T>
void transpose_bias_activation_block(const T* ct, Index ldct, Index rows, Index cols, const T* bias,
                                     Activation act, T slope, T* y, Index ldy) {
  kernels<T>().transpose_bias_activation_block(ct, ldct, rows, cols, bias, act, slope, y, ldy);
}

template <class T>
void spline_forward(const Tensor<T>& x, const Tensor<T>& params, const SplineSettings& s,
                    Tensor<T>& out) {
  kernels<T>().spline_forward(x, params, s, out);
}

template <class T>
void spline_backward(const Tensor<T>& x, const Tensor<T>& params, const Tensor<T>& grad,
                     const SplineSettings& s, Tensor<T>* gx, Tensor<T>* gp) {
  kernels<T>().spline_backward(x, params, grad, s, gx, gp);
}

}  // namespace detail

#define FLOWGRAD_INSTANTIATE(T)                                                                    \
  template void unary(Unary, const Tensor<T>&, Tensor<T>&, T);                                     \
  template void unary_backward(Unary, const Tensor<T>&, const Tensor<T>&, const Tensor<T>&,        \
                               Tensor<T>&, T);                                                     \
  template void binary(Binary, const Tensor<T>&, const Tensor<T>&, Tensor<T>&);                    \
  template void axpy(T, const Tensor<T>&, Tensor<T>&);                                             \
  template void accumulate_reduced(const Tensor<T>&, Tensor<T>&);                                  \
  template void sum(const Tensor<T>&, Tensor<T>&);                                                 \
  template void sum(const Tensor<T>&, int, Tensor<T>&);                                            \
  template void mean(const Tensor<T>&, Tensor<T>&);                                                \
  template void mean(const Tensor<T>&, int, Tensor<T>&);                                           \
  template void max(const Tensor<T>&, Tensor<T>&);                                                 \
  template void max(const Tensor<T>&, int, Tensor<T>&);                                            \
  template void logsumexp(const Tensor<T>&, int, Tensor<T>&);                                      \
  template bool all_finite(const Tensor<T>&);                                                      \
  template void gemm(Index, Index, Index, const T*, Index, const T*, Index, T*, Index,             \
                     GemmOptions, const GemmEpilogue<T>&);                                         \
  template void gemm(Index, Index, Index, const T*, Index, const PackedB<T>&, T*, Index,           \
                     GemmOptions, const GemmEpilogue<T>&);                                         \
  template class PackedB<T>;                                                                       \
  template void bias_activation(Tensor<T>&, const Tensor<T>&, Activation, T);                      \
  template void activation_backward(const Tensor<T>&, const Tensor<T>&, Activation, T, Tensor<T>&, \
                                    Tensor<T>*);                                                   \
  template void adam_update(Tensor<T>&, const Tensor<T>&, Tensor<T>&, Tensor<T>&,                  \
                            const AdamCoefficients&);                                              \
  template void adam_apply(const T*, const AdamTarget<T>&);                                        \
  template void detail::bias_activation_block(T*, Index, Index, Index, const T*, Activation, T);   \
  template void detail::activation_backward_block(const T*, const T*, T*, Index, Index,            \
                                                  Activation, T, T*);                              \
  template void detail::transpose_bias_activation_block(const T*, Index, Index, Index, const T*,   \
                                                        Activation, T, T*, Index);                 \
  template void detail::spline_forward(const Tensor<T>&, const Tensor<T>&,                         \
                                       const detail::SplineSettings&, Tensor<T>&);                 \
  template void detail::spline_backward(const Tensor<T>&, const Tensor<T>&, const Tensor<T>&,      \
                                        const detail::SplineSettings&, Tensor<T>*, Tensor<T>*);
FLOWGRAD_INSTANTIATE(float)
FLOWGRAD_INSTANTIATE(double)
#undef FLOWGRAD_INSTANTIATE

}  // namespace flowgrad
