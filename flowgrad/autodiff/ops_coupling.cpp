// affine_columns(): an affine coupling's transform of some columns, x * exp(s) + t, as one node.
#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "flowgrad/autodiff/detail/op_support.hpp"

namespace flowgrad {

using detail::push;

namespace {

// y = x but for columns idx[j] (the node's indices): x * e + t forward, (x - t) * e inverse, with
// e = exp(+-s) kept in saved[0]. Forward: dy/dx = e, dy/ds = y - t, dy/dt = 1. Inverse: dy/dx = e,
// dy/ds = -y, dy/dt = -e. Inputs: x, s, t.
template <Scalar T>
struct AffineColumnsOp {
  struct State {
    bool inverse;
  };
  static void backward(OpTape<T>& t, const Node<T>& n) {
    const std::vector<Index>& idx = n.indices;
    const bool inverse = state<State>(n).inverse;
    Tensor<T>* gx = t.grad_for(n.in[0]);
    Tensor<T>* gs = t.grad_for(n.in[1]);
    Tensor<T>* gt = t.grad_for(n.in[2]);
    const T* e = n.saved[0].data();
    const T* shift = t.value(n.in[2]).data();
    const T* y = n.value.data();
    const T* g = n.grad.data();
    const Index m = n.value.rows(), d = n.value.cols(), k = static_cast<Index>(idx.size());
    // One column at a time, rows d apart: a 2-D flow has two columns and transforms one.
    if (gx)
      for (Index c = 0; c < d; ++c) {
        T* gxp = gx->data() + c;
        const T* gc = g + c;
        const auto it = std::find(idx.begin(), idx.end(), c);
        if (it == idx.end()) {
          for (Index i = 0; i < m; ++i) gxp[i * d] += gc[i * d];
        } else {
          const T* ej = e + (it - idx.begin());
          for (Index i = 0; i < m; ++i) gxp[i * d] += gc[i * d] * ej[i * k];
        }
      }
    for (Index j = 0; j < k; ++j) {
      const Index c = idx[static_cast<std::size_t>(j)];
      if (gs) {
        T* gsp = gs->data() + j;
        if (inverse)
          for (Index i = 0; i < m; ++i) gsp[i * k] -= g[i * d + c] * y[i * d + c];
        else
          for (Index i = 0; i < m; ++i)
            gsp[i * k] += g[i * d + c] * (y[i * d + c] - shift[i * k + j]);
      }
      if (gt) {
        T* gtp = gt->data() + j;
        if (inverse)
          for (Index i = 0; i < m; ++i) gtp[i * k] -= g[i * d + c] * e[i * k + j];
        else
          for (Index i = 0; i < m; ++i) gtp[i * k] += g[i * d + c];
      }
    }
  }
};

}  // namespace

template <Scalar T>
Var<T> affine_columns(const Var<T>& x, const Var<T>& s, const Var<T>& t,
                      const std::vector<Index>& idx, bool inverse) {
  const Shape xs = x.shape();
  const Shape want{xs.rows(), static_cast<Index>(idx.size())};
  if (xs.rank() > 2 || !(s.shape() == want) || !(t.shape() == want))
    throw std::invalid_argument("affine_columns: input " + xs.str() + " with " +
                                std::to_string(idx.size()) +
                                " columns to transform needs s and t " + want.str() + ", got " +
                                s.shape().str() + " and " + t.shape().str());
  // Per-thread flags that only grow: a training step allocates nothing.
  thread_local std::vector<unsigned char> seen;
  seen.assign(static_cast<std::size_t>(std::max<Index>(xs.cols(), seen.size())), 0);
  for (Index c : idx) {
    if (c < 0 || c >= xs.cols())
      throw std::invalid_argument("affine_columns: column " + std::to_string(c) + " is outside " +
                                  xs.str());
    if (seen[static_cast<std::size_t>(c)])
      throw std::invalid_argument("affine_columns: column " + std::to_string(c) + " repeats");
    seen[static_cast<std::size_t>(c)] = true;
  }
  Var<T> out;
  Node<T>& n = push<AffineColumnsOp<T>>("affine_columns", &out, {x, s, t});
  n.indices.assign(idx.begin(), idx.end());
  n.set_state(typename AffineColumnsOp<T>::State{inverse});
  const Tensor<T>& xv = x.value();
  const Tensor<T>& sv = s.value();
  const Tensor<T>& tv = t.value();
  n.saved.resize(1);
  Tensor<T>& e = n.saved[0];
  if (inverse) {
    unary(Unary::neg, sv, e);
    unary(Unary::exp, e, e);
  } else {
    unary(Unary::exp, sv, e);
  }
  n.value = xv;
  const Index m = xv.rows(), d = xv.cols(), k = static_cast<Index>(idx.size());
  for (Index j = 0; j < k; ++j) {
    const Index c = idx[static_cast<std::size_t>(j)];
    T* y = n.value.data() + c;
    const T* ep = e.data() + j;
    const T* tp = tv.data() + j;
    if (inverse)
      for (Index i = 0; i < m; ++i) y[i * d] = (y[i * d] - tp[i * k]) * ep[i * k];
    else
      for (Index i = 0; i < m; ++i) y[i * d] = y[i * d] * ep[i * k] + tp[i * k];
  }
  return out;
}

#define FLOWGRAD_INSTANTIATE(T)                                               \
  template Var<T> affine_columns(const Var<T>&, const Var<T>&, const Var<T>&, \
                                 const std::vector<Index>&, bool);
FLOWGRAD_FOR_EACH_SCALAR(FLOWGRAD_INSTANTIATE)
#undef FLOWGRAD_INSTANTIATE

}  // namespace flowgrad
