// The fused bias + activation kernels; each activation's derivative is written from its output.
#include "tensor/fused.hpp"

#include <stdexcept>
#include <string>

#include "tensor/detail/simd.hpp"

namespace flowgrad {

namespace {

template <class T>
using B = simd::batch<T>;

template <class T>
B<T> activate(Activation act, B<T> x, B<T> slope) {
  const B<T> zero(T(0)), one(T(1));
  switch (act) {
    case Activation::none:
      return x;
    case Activation::relu:
      return xsimd::max(x, zero);
    case Activation::leaky_relu:
      return xsimd::select(x > zero, x, x * slope);
    case Activation::tanh:
      return xsimd::tanh(x);
    case Activation::sigmoid:
      return one / (one + xsimd::exp(-x));
    case Activation::softplus:
      return xsimd::max(x, zero) + xsimd::log1p(xsimd::exp(-xsimd::abs(x)));
  }
  return x;
}

// act'(x) from y = act(x).
template <class T>
B<T> derivative_from_output(Activation act, B<T> y, B<T> slope) {
  const B<T> zero(T(0)), one(T(1));
  switch (act) {
    case Activation::none:
      return one;
    case Activation::relu:
      return xsimd::select(y > zero, one, zero);
    case Activation::leaky_relu:
      return xsimd::select(y > zero, one, slope);
    case Activation::tanh:
      return one - y * y;
    case Activation::sigmoid:
      return y * (one - y);
    // softplus' = sigmoid(x) = 1 - exp(-softplus(x)); expm1 keeps it exact for tiny y.
    case Activation::softplus:
      return -xsimd::expm1(-y);
  }
  return one;
}

void check(const char* op, const Shape& y, const Shape& other, const char* what) {
  if (y.rank() > 2 || other.rows() != y.rows() || other.cols() != y.cols())
    throw std::invalid_argument(std::string(op) + ": " + what + " " + other.str() +
                                " does not match the output " + y.str());
}

}  // namespace

template <Scalar T>
void bias_activation(Tensor<T>& y, const Tensor<T>& bias, Activation act, T slope) {
  if (bias.numel() != y.cols())
    throw std::invalid_argument("bias_activation: bias " + bias.shape().str() + " for output " +
                                y.shape().str());
  const Index m = y.rows(), n = y.cols();
  const B<T> sl(slope);
  if (simd::rows_tile<T>(n)) {
    const B<T> b = simd::repeated(bias.data(), n);
    simd::zip(
        m * n, y.data(), [&](B<T> v) { return activate(act, v + b, sl); }, y.data());
    return;
  }
  for (Index i = 0; i < m; ++i) {
    T* row = y.data() + i * n;
    simd::zip(
        n, row, [&](B<T> v, B<T> b) { return activate(act, v + b, sl); }, row, bias.data());
  }
}

template <Scalar T>
void activation_backward(const Tensor<T>& y, const Tensor<T>& gy, Activation act, T slope,
                         Tensor<T>& gz, Tensor<T>* bias_grad) {
  check("activation_backward", y.shape(), gy.shape(), "gradient");
  if (bias_grad && bias_grad->numel() != y.cols())
    throw std::invalid_argument("activation_backward: bias gradient " + bias_grad->shape().str() +
                                " for output " + y.shape().str());
  if (&gz != &gy) gz.resize(y.shape());
  const Index m = y.rows(), n = y.cols();
  const B<T> sl(slope);
  if (simd::rows_tile<T>(n)) {
    // The zero-padded tail contributes g = 0, so nothing to the bias gradient.
    B<T> acc(T(0));
    simd::zip(
        m * n, gz.data(),
        [&](B<T> v, B<T> g) {
          const B<T> z = g * derivative_from_output(act, v, sl);
          acc += z;
          return z;
        },
        y.data(), gy.data());
    if (bias_grad) simd::fold_into(acc, n, bias_grad->data());
    return;
  }
  for (Index i = 0; i < m; ++i) {
    const T* yr = y.data() + i * n;
    const T* gr = gy.data() + i * n;
    T* zr = gz.data() + i * n;
    simd::zip(
        n, zr, [&](B<T> v, B<T> g) { return g * derivative_from_output(act, v, sl); }, yr, gr);
    if (bias_grad)
      simd::zip(
          n, bias_grad->data(), [](B<T> a, B<T> b) { return a + b; }, bias_grad->data(), zr);
  }
}

template void bias_activation(Tensor<float>&, const Tensor<float>&, Activation, float);
template void bias_activation(Tensor<double>&, const Tensor<double>&, Activation, double);
template void activation_backward(const Tensor<float>&, const Tensor<float>&, Activation, float,
                                  Tensor<float>&, Tensor<float>*);
template void activation_backward(const Tensor<double>&, const Tensor<double>&, Activation, double,
                                  Tensor<double>&, Tensor<double>*);

}  // namespace flowgrad
