// matmul(): shape checks around gemm().
#include <stdexcept>

#include "tensor/ops.hpp"

namespace flowgrad {

template <Scalar T>
void matmul(const Tensor<T>& a, const Tensor<T>& b, Tensor<T>& c, GemmOptions opt) {
  if (a.shape().rank() > 2 || b.shape().rank() > 2)
    throw std::invalid_argument("matmul: operands must be 2-D, got " + a.shape().str() + " and " +
                                b.shape().str());
  if (&c == &a || &c == &b) throw std::invalid_argument("matmul: output aliases an input");
  const Index m = opt.trans_a ? a.cols() : a.rows();
  const Index k = opt.trans_a ? a.rows() : a.cols();
  const Index kb = opt.trans_b ? b.cols() : b.rows();
  const Index n = opt.trans_b ? b.rows() : b.cols();
  if (k != kb)
    throw std::invalid_argument(std::string("matmul: inner dimensions differ: ") +
                                (opt.trans_a ? "A^T of " : "A ") + a.shape().str() + " times " +
                                (opt.trans_b ? "B^T of " : "B ") + b.shape().str());
  const Shape out{m, n};
  if (opt.accumulate) {
    if (c.rows() != m || c.cols() != n || c.shape().rank() > 2)
      throw std::invalid_argument("matmul: accumulating into " + c.shape().str() + ", product is " +
                                  out.str());
  } else {
    c.resize(out);
  }
  gemm(m, n, k, a.data(), a.cols(), b.data(), b.cols(), c.data(), n, opt);
}

template void matmul(const Tensor<float>&, const Tensor<float>&, Tensor<float>&, GemmOptions);
template void matmul(const Tensor<double>&, const Tensor<double>&, Tensor<double>&, GemmOptions);

}  // namespace flowgrad
