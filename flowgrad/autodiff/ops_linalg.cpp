// matmul and linear.
#include <stdexcept>

#include "flowgrad/autodiff/detail/op_support.hpp"

namespace flowgrad {

using detail::push;

namespace {

// C = op(A) op(B). With G the gradient of C:
//   C = A B     : dA += G B^T,     dB += A^T G
//   C = A^T B   : dA += B G^T,     dB += A G
//   C = A B^T   : dA += G B,       dB += G^T A
//   C = A^T B^T : dA += B^T G^T,   dB += G^T A^T
template <Scalar T>
struct MatmulOp {
  static void backward(OpTape<T>& t, const Node<T>& n) {
    const GemmOptions& o = state<GemmOptions>(n);
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
  struct State {
    Activation act;
    T slope;  // leaky_relu's
  };
  static void backward(OpTape<T>& t, const Node<T>& n) {
    const State& st = state<State>(n);
    Tensor<T>* gbias = t.grad_for(n.in[2]);
    const Tensor<T>* z = &n.grad;
    if (st.act != Activation::none) {
      Tensor<T>& s = t.scratch(detail::scratch_a);
      activation_backward(n.value, n.grad, st.act, st.slope, s, gbias);
      z = &s;
    } else if (gbias) {
      detail::accumulate(t, n.grad, *gbias);
    }
    bool overwrite = false;
    if (auto* gx = t.grad_for(n.in[0], &overwrite))
      matmul(*z, t.value(n.in[1]), *gx, {false, false, !overwrite});
    if (auto* gw = t.grad_for(n.in[1], &overwrite))
      matmul(*z, t.value(n.in[0]), *gw, {true, false, !overwrite});
  }
};

}  // namespace

template <Scalar T>
Var<T> matmul(const Var<T>& a, const Var<T>& b, GemmOptions opt) {
  if (opt.accumulate) throw std::invalid_argument("matmul: accumulate is not differentiable here");
  Var<T> out;
  Node<T>& n = push<MatmulOp<T>>("matmul", &out, {a, b});
  n.set_state(opt);
  matmul(a.value(), b.value(), n.value, opt);
  return out;
}

template <Scalar T>
Var<T> linear(const Var<T>& x, const Var<T>& weight, const Var<T>& bias, Activation act) {
  const Shape ws = weight.shape(), bs = bias.shape();
  if (bs.rows() != 1 || bs.cols() != ws.rows())
    throw std::invalid_argument("linear: bias " + bs.str() + " does not match weight " + ws.str());
  Var<T> out;
  Node<T>& n = push<LinearOp<T>>("linear", &out, {x, weight, bias});
  // leaky_relu's slope is the leaky_relu op's default.
  const auto& st = n.set_state(typename LinearOp<T>::State{act, T(0.01)});
  linear_forward(x.value(), weight.value(), bias.value(), act, st.slope, n.value);
  return out;
}

#define FLOWGRAD_INSTANTIATE(T)                                      \
  template Var<T> matmul(const Var<T>&, const Var<T>&, GemmOptions); \
  template Var<T> linear(const Var<T>&, const Var<T>&, const Var<T>&, Activation);
FLOWGRAD_FOR_EACH_SCALAR(FLOWGRAD_INSTANTIATE)
#undef FLOWGRAD_INSTANTIATE

}  // namespace flowgrad
