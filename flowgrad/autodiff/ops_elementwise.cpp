// Elementwise ops: each struct holds the op's backward rule; its forward is the function below it.
#include <string>

#include "flowgrad/autodiff/detail/op_support.hpp"

namespace flowgrad {

using detail::accumulate;
using detail::push;

namespace {

// d(a + b) = da + db, each summed back to its input's shape.
template <Scalar T>
struct AddOp {
  static void backward(OpTape<T>& t, const Node<T>& n) {
    if (auto* ga = t.grad_for(n.in[0])) accumulate(t, n.grad, *ga);
    if (auto* gb = t.grad_for(n.in[1])) accumulate(t, n.grad, *gb);
  }
};

template <Scalar T>
struct SubOp {
  static void backward(OpTape<T>& t, const Node<T>& n) {
    if (auto* ga = t.grad_for(n.in[0])) accumulate(t, n.grad, *ga);
    if (auto* gb = t.grad_for(n.in[1])) accumulate(t, n.grad, *gb, T(-1));
  }
};

// d(a b) = b da + a db.
template <Scalar T>
struct MulOp {
  static void backward(OpTape<T>& t, const Node<T>& n) {
    Tensor<T>& s = t.scratch(detail::scratch_a);
    if (auto* ga = t.grad_for(n.in[0])) {
      binary(Binary::mul, n.grad, t.value(n.in[1]), s);
      accumulate(t, s, *ga);
    }
    if (auto* gb = t.grad_for(n.in[1])) {
      binary(Binary::mul, n.grad, t.value(n.in[0]), s);
      accumulate(t, s, *gb);
    }
  }
};

// d(a / b) = da / b - (a / b^2) db = da / b - (y / b) db.
template <Scalar T>
struct DivOp {
  static void backward(OpTape<T>& t, const Node<T>& n) {
    Tensor<T>& s = t.scratch(detail::scratch_a);
    const Tensor<T>& b = t.value(n.in[1]);
    if (auto* ga = t.grad_for(n.in[0])) {
      binary(Binary::div, n.grad, b, s);
      accumulate(t, s, *ga);
    }
    if (auto* gb = t.grad_for(n.in[1])) {
      binary(Binary::mul, n.grad, n.value, s);
      binary(Binary::div, s, b, s);
      accumulate(t, s, *gb, T(-1));
    }
  }
};

template <Scalar T>
Var<T> binary_op(Binary f, BackwardFn<T> backward, const Var<T>& a, const Var<T>& b) {
  Var<T> out;
  Node<T>& n = OpTape<T>(a.tape()).push(to_string(f), backward, {a, b}, &out);
  binary(f, a.value(), b.value(), n.value);
  return out;
}

// y = f(x): the derivative of each function sits beside its forward formula in the tensor layer's
// elementwise kernels (tensor/elementwise.cpp), so this rule only routes the gradient there.
template <Scalar T>
struct UnaryOpNode {
  struct State {
    Unary f;
    T param;  // leaky_relu's slope, pow's exponent
  };
  static void backward(OpTape<T>& t, const Node<T>& n) {
    const State& s = state<State>(n);
    if (auto* gx = t.grad_for(n.in[0]))
      unary_backward(s.f, t.value(n.in[0]), n.value, n.grad, *gx, s.param);
  }
};

template <Scalar T>
Var<T> unary_op(Unary f, const Var<T>& x, T param = T(0)) {
  Var<T> out;
  Node<T>& n = push<UnaryOpNode<T>>(to_string(f), &out, {x});
  n.set_state(typename UnaryOpNode<T>::State{f, param});
  unary(f, x.value(), n.value, param);
  return out;
}

// y = scale x + shift.
template <Scalar T>
struct AffineOp {
  struct State {
    T scale;
  };
  static void backward(OpTape<T>& t, const Node<T>& n) {
    if (auto* gx = t.grad_for(n.in[0])) axpy(state<State>(n).scale, n.grad, *gx);
  }
};

}  // namespace

template <Scalar T>
Var<T> add(const Var<T>& a, const Var<T>& b) {
  return binary_op(Binary::add, &AddOp<T>::backward, a, b);
}
template <Scalar T>
Var<T> sub(const Var<T>& a, const Var<T>& b) {
  return binary_op(Binary::sub, &SubOp<T>::backward, a, b);
}
template <Scalar T>
Var<T> mul(const Var<T>& a, const Var<T>& b) {
  return binary_op(Binary::mul, &MulOp<T>::backward, a, b);
}
template <Scalar T>
Var<T> div(const Var<T>& a, const Var<T>& b) {
  return binary_op(Binary::div, &DivOp<T>::backward, a, b);
}
template <Scalar T>
Var<T> neg(const Var<T>& x) {
  return unary_op(Unary::neg, x);
}

template <Scalar T>
Var<T> affine(const Var<T>& x, std::type_identity_t<T> scale, std::type_identity_t<T> shift) {
  Var<T> out;
  Node<T>& n = push<AffineOp<T>>("affine", &out, {x});
  n.set_state(typename AffineOp<T>::State{scale});
  const Tensor<T>& v = x.value();
  n.value.resize(v.shape());
  for (Index i = 0; i < v.numel(); ++i) n.value[i] = v[i] * scale + shift;
  return out;
}

template <Scalar T>
Var<T> exp(const Var<T>& x) {
  return unary_op(Unary::exp, x);
}
template <Scalar T>
Var<T> log(const Var<T>& x) {
  return unary_op(Unary::log, x);
}
template <Scalar T>
Var<T> tanh(const Var<T>& x) {
  return unary_op(Unary::tanh, x);
}
template <Scalar T>
Var<T> sigmoid(const Var<T>& x) {
  return unary_op(Unary::sigmoid, x);
}
template <Scalar T>
Var<T> softplus(const Var<T>& x) {
  return unary_op(Unary::softplus, x);
}
template <Scalar T>
Var<T> relu(const Var<T>& x) {
  return unary_op(Unary::relu, x);
}
template <Scalar T>
Var<T> leaky_relu(const Var<T>& x, std::type_identity_t<T> slope) {
  return unary_op(Unary::leaky_relu, x, slope);
}
template <Scalar T>
Var<T> square(const Var<T>& x) {
  return unary_op(Unary::square, x);
}
template <Scalar T>
Var<T> sqrt(const Var<T>& x) {
  return unary_op(Unary::sqrt, x);
}
template <Scalar T>
Var<T> sin(const Var<T>& x) {
  return unary_op(Unary::sin, x);
}
template <Scalar T>
Var<T> cos(const Var<T>& x) {
  return unary_op(Unary::cos, x);
}
template <Scalar T>
Var<T> abs(const Var<T>& x) {
  return unary_op(Unary::abs, x);
}
template <Scalar T>
Var<T> pow(const Var<T>& x, std::type_identity_t<T> e) {
  return unary_op(Unary::pow, x, e);
}

// log(e^a + e^b) = a + softplus(b - a): smooth, and stable for any gap between a and b.
template <Scalar T>
Var<T> logaddexp(const Var<T>& a, const Var<T>& b) {
  return add(a, softplus(sub(b, a)));
}

#define FLOWGRAD_INSTANTIATE(T)                      \
  template Var<T> add(const Var<T>&, const Var<T>&); \
  template Var<T> sub(const Var<T>&, const Var<T>&); \
  template Var<T> mul(const Var<T>&, const Var<T>&); \
  template Var<T> div(const Var<T>&, const Var<T>&); \
  template Var<T> neg(const Var<T>&);                \
  template Var<T> affine(const Var<T>&, T, T);       \
  template Var<T> exp(const Var<T>&);                \
  template Var<T> log(const Var<T>&);                \
  template Var<T> tanh(const Var<T>&);               \
  template Var<T> sigmoid(const Var<T>&);            \
  template Var<T> softplus(const Var<T>&);           \
  template Var<T> relu(const Var<T>&);               \
  template Var<T> leaky_relu(const Var<T>&, T);      \
  template Var<T> square(const Var<T>&);             \
  template Var<T> sqrt(const Var<T>&);               \
  template Var<T> sin(const Var<T>&);                \
  template Var<T> cos(const Var<T>&);                \
  template Var<T> abs(const Var<T>&);                \
  template Var<T> pow(const Var<T>&, T);             \
  template Var<T> logaddexp(const Var<T>&, const Var<T>&);
FLOWGRAD_FOR_EACH_SCALAR(FLOWGRAD_INSTANTIATE)
#undef FLOWGRAD_INSTANTIATE

}  // namespace flowgrad
