#pragma once
// Elementwise maths, reductions and matmul on 2-D tensors. Every function has an `out` form that
// reuses out's allocation (resize keeps capacity) and a returning form for convenience. Shape
// errors throw std::invalid_argument naming the op and the shapes, in every build type.
#include "flowgrad/tensor/gemm_options.hpp"
#include "flowgrad/tensor/tensor.hpp"

namespace flowgrad {

enum class Unary {
  neg,
  exp,
  log,
  tanh,
  sigmoid,
  softplus,
  relu,
  leaky_relu,
  square,
  sqrt,
  sin,
  cos,
  abs,
  pow
};
// The op's name ("exp", "leaky_relu", ...), as in node names and error messages.
const char* to_string(Unary f);

// y = f(x). `param` is the negative slope of leaky_relu (>= 0, so that the function is monotone
// and its derivative follows from y) and the exponent of pow.
template <Scalar T>
void unary(Unary f, const Tensor<T>& x, Tensor<T>& y, T param = T(0));
// gx += gy * f'(x), where y = f(x) is the forward result (several derivatives are cheaper from y).
template <Scalar T>
void unary_backward(Unary f, const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& gy,
                    Tensor<T>& gx, T param = T(0));

// Binary ops broadcast a [1, n] row, an [m, 1] column or a [1, 1] scalar against [m, n], on either
// side (and a row against a column, giving [m, n]).
enum class Binary { add, sub, mul, div };
const char* to_string(Binary f);
Shape broadcast_shape(const char* op, const Shape& a, const Shape& b);

template <Scalar T>
void binary(Binary f, const Tensor<T>& a, const Tensor<T>& b, Tensor<T>& out);

// acc += g, summed over the dimensions that broadcasting expanded to reach g's shape.
template <Scalar T>
void accumulate_reduced(const Tensor<T>& g, Tensor<T>& acc);
// acc += alpha * x, same shapes.
template <Scalar T>
void axpy(T alpha, const Tensor<T>& x, Tensor<T>& acc);

// Reductions keep the reduced dimension, as torch's keepdim=True: dim 0 reduces over rows
// ([m, n] -> [1, n]), dim 1 over columns ([m, n] -> [m, 1]); no dim reduces everything to [1, 1].
template <Scalar T>
void sum(const Tensor<T>& x, Tensor<T>& out);
template <Scalar T>
void sum(const Tensor<T>& x, int dim, Tensor<T>& out);
template <Scalar T>
void mean(const Tensor<T>& x, Tensor<T>& out);
template <Scalar T>
void mean(const Tensor<T>& x, int dim, Tensor<T>& out);
template <Scalar T>
void max(const Tensor<T>& x, Tensor<T>& out);
template <Scalar T>
void max(const Tensor<T>& x, int dim, Tensor<T>& out);
// Whether no element is NaN or infinite.
template <Scalar T>
bool all_finite(const Tensor<T>& x);
// log(sum(exp(x))) computed without overflow; a slice of all -inf gives -inf.
template <Scalar T>
void logsumexp(const Tensor<T>& x, int dim, Tensor<T>& out);

// c = op(a) op(b), or c += ... with accumulate. Transposes are read in place, never copied.
template <Scalar T>
void matmul(const Tensor<T>& a, const Tensor<T>& b, Tensor<T>& c, GemmOptions opt = {});

// Returning forms.
template <Scalar T>
Tensor<T> unary(Unary f, const Tensor<T>& x, T param = T(0)) {
  Tensor<T> y;
  unary(f, x, y, param);
  return y;
}
template <Scalar T>
Tensor<T> binary(Binary f, const Tensor<T>& a, const Tensor<T>& b) {
  Tensor<T> out;
  binary(f, a, b, out);
  return out;
}
template <Scalar T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b, GemmOptions opt = {}) {
  Tensor<T> c;
  matmul(a, b, c, {opt.trans_a, opt.trans_b, false});
  return c;
}
template <Scalar T>
Tensor<T> sum(const Tensor<T>& x, int dim) {
  Tensor<T> out;
  sum(x, dim, out);
  return out;
}
template <Scalar T>
T sum(const Tensor<T>& x) {
  Tensor<T> out;
  sum(x, out);
  return out.item();
}

template <Scalar T>
Tensor<T> operator+(const Tensor<T>& a, const Tensor<T>& b) {
  return binary(Binary::add, a, b);
}
template <Scalar T>
Tensor<T> operator-(const Tensor<T>& a, const Tensor<T>& b) {
  return binary(Binary::sub, a, b);
}
template <Scalar T>
Tensor<T> operator*(const Tensor<T>& a, const Tensor<T>& b) {
  return binary(Binary::mul, a, b);
}
template <Scalar T>
Tensor<T> operator/(const Tensor<T>& a, const Tensor<T>& b) {
  return binary(Binary::div, a, b);
}

}  // namespace flowgrad
