// matmul and linear.
#include <stdexcept>

#include "flowgrad/autodiff/detail/op_support.hpp"

namespace flowgrad {

using detail::push;

namespace {

GemmOptions unpack(int aux) { return {(aux & 1) != 0, (aux & 2) != 0, false}; }

// C = op(A) op(B). With G the gradient of C:
//   C = A B     : dA += G B^T,     dB += A^T G
//   C = A^T B   : dA += B G^T,     dB += A G
//   C = A B^T   : dA += G B,       dB += G^T A
//   C = A^T B^T : dA += B^T G^T,   dB += G^T A^T
template <Scalar T>
struct MatmulOp {
  static void backward(Tape<T>& t, const Node<T>& n) {
    const GemmOptions o = unpack(n.aux);
    const Tensor<T>& a = t.value(n.in[0]);
    const Tensor<T>& b = t.value(n.in[1]);
    const Tensor<T>& g = n.grad;
    if (auto* ga = t.grad_for(n.in[0])) {
      if (!o.trans_a)
        matmul(g, b, *ga, {false, !o.trans_b, true});
      else
        matmul(b, g, *ga, {o.trans_b, true, true});
    }
    if (auto* gb = t.grad_for(n.in[1])) {
      if (!o.trans_b)
        matmul(a, g, *gb, {!o.trans_a, false, true});
      else
        matmul(g, a, *gb, {true, o.trans_a, true});
    }
  }
};

// y = act(x W^T + b). With Z = G act'(.) (from y): dx += Z W, dW += Z^T x, db += column sums of Z.
template <Scalar T>
struct LinearOp {
  static void backward(Tape<T>& t, const Node<T>& n) {
    const auto act = static_cast<Activation>(n.aux);
    Tensor<T>* gbias = t.grad_for(n.in[2]);
    const Tensor<T>* z = &n.grad;
    if (act != Activation::none) {
      Tensor<T>& s = t.scratch(detail::scratch_a);
      activation_backward(n.value, n.grad, act, n.c0, s, gbias);
      z = &s;
    } else if (gbias) {
      detail::accumulate(t, n.grad, *gbias);
    }
    bool overwrite = false;
    if (auto* gx = t.grad_for(n.in[0], &overwrite))
      matmul(*z, t.value(n.in[1]), *gx, {false, false, !overwrite});
    if (auto* gw = t.grad_for(n.in[1])) matmul(*z, t.value(n.in[0]), *gw, {true, false, true});
  }
};

}  // namespace

template <Scalar T>
Var<T> matmul(const Var<T>& a, const Var<T>& b, GemmOptions opt) {
  if (opt.accumulate) throw std::invalid_argument("matmul: accumulate is not differentiable here");
  Var<T> out;
  Node<T>& n = push<MatmulOp<T>>("matmul", &out, {a, b});
  n.aux = (opt.trans_a ? 1 : 0) | (opt.trans_b ? 2 : 0);
  matmul(a.tape().value(a.index()), b.tape().value(b.index()), n.value, opt);
  return out;
}

template <Scalar T>
Var<T> linear(const Var<T>& x, const Var<T>& weight, const Var<T>& bias, Activation act) {
  const Shape ws = weight.shape(), bs = bias.shape();
  if (bs.rows() != 1 || bs.cols() != ws.rows())
    throw std::invalid_argument("linear: bias " + bs.str() + " does not match weight " + ws.str());
  Var<T> out;
  Node<T>& n = push<LinearOp<T>>("linear", &out, {x, weight, bias});
  n.aux = static_cast<int>(act);
  n.c0 = T(0.01);  // leaky_relu's slope, as the leaky_relu op's default
  // Inputs are read only after push(): a push may move the tape's nodes.
  Tape<T>& t = x.tape();
  linear_forward(t.value(x.index()), t.value(weight.index()), t.value(bias.index()), act, n.c0,
                 n.value);
  return out;
}

#define FLOWGRAD_INSTANTIATE(T)                                      \
  template Var<T> matmul(const Var<T>&, const Var<T>&, GemmOptions); \
  template Var<T> linear(const Var<T>&, const Var<T>&, const Var<T>&, Activation);
FLOWGRAD_FOR_EACH_SCALAR(FLOWGRAD_INSTANTIATE)
#undef FLOWGRAD_INSTANTIATE

}  // namespace flowgrad
