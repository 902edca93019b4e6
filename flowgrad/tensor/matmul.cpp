// matmul() and linear_forward(): shape checks around gemm().
#include <stdexcept>

#include "flowgrad/tensor/detail/fused.hpp"
#include "flowgrad/tensor/detail/gemm.hpp"
#include "flowgrad/tensor/ops.hpp"

namespace flowgrad {

namespace {

// The shape of op(A) op(B), after checking that the product is defined.
template <Scalar T>
Shape product_shape(const char* op, const Tensor<T>& a, const Tensor<T>& b, GemmOptions opt) {
  if (a.shape().rank() > 2 || b.shape().rank() > 2)
    throw std::invalid_argument(std::string(op) + ": operands must be 2-D, got " + a.shape().str() +
                                " and " + b.shape().str());
  const Index k = opt.trans_a ? a.rows() : a.cols();
  const Index kb = opt.trans_b ? b.cols() : b.rows();
  if (k != kb)
    throw std::invalid_argument(
        std::string(op) + ": inner dimensions differ: " + (opt.trans_a ? "A^T of " : "A ") +
        a.shape().str() + " times " + (opt.trans_b ? "B^T of " : "B ") + b.shape().str());
  return Shape{opt.trans_a ? a.cols() : a.rows(), opt.trans_b ? b.rows() : b.cols()};
}

}  // namespace

template <Scalar T>
void matmul(const Tensor<T>& a, const Tensor<T>& b, Tensor<T>& c, GemmOptions opt) {
  const Shape out = product_shape("matmul", a, b, opt);
  if (&c == &a || &c == &b) throw std::invalid_argument("matmul: output aliases an input");
  const Index m = out.rows(), n = out.cols();
  const Index k = opt.trans_a ? a.rows() : a.cols();
  if (opt.accumulate) {
    if (c.rows() != m || c.cols() != n || c.shape().rank() > 2)
      throw std::invalid_argument("matmul: accumulating into " + c.shape().str() + ", product is " +
                                  out.str());
  } else {
    c.resize(out);
  }
  gemm(m, n, k, a.data(), a.cols(), b.data(), b.cols(), c.data(), n, opt);
}

template <Scalar T>
void linear_forward(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& bias, Activation act,
                    T slope, Tensor<T>& y) {
  const Shape out = product_shape("linear_forward", x, w, {false, true, false});
  if (bias.numel() != w.rows())
    throw std::invalid_argument("linear_forward: bias " + bias.shape().str() + " for weight " +
                                w.shape().str());
  if (&y == &x || &y == &w || &y == &bias)
    throw std::invalid_argument("linear_forward: output aliases an input");
  y.resize(out);
  gemm(out.rows(), out.cols(), x.cols(), x.data(), x.cols(), w.data(), w.cols(), y.data(),
       out.cols(), {false, true, false}, GemmEpilogue<T>{bias.data(), act, slope});
}

template void matmul(const Tensor<float>&, const Tensor<float>&, Tensor<float>&, GemmOptions);
template void matmul(const Tensor<double>&, const Tensor<double>&, Tensor<double>&, GemmOptions);
template void linear_forward(const Tensor<float>&, const Tensor<float>&, const Tensor<float>&,
                             Activation, float, Tensor<float>&);
template void linear_forward(const Tensor<double>&, const Tensor<double>&, const Tensor<double>&,
                             Activation, double, Tensor<double>&);

}  // namespace flowgrad
