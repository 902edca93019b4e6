// Reductions: sum, mean and logsumexp.
#include <string>

#include "flowgrad/autodiff/detail/op_support.hpp"

namespace flowgrad {

using detail::push;

namespace {

constexpr int all_dims = -1;

// y = scale * (sum over dim); gx += scale * g broadcast back over the reduced dimension(s).
template <Scalar T>
struct SumOp {
  struct State {
    int dim;  // 0 rows, 1 columns, all_dims everything
    T scale;  // 1 for a sum, 1 / count for a mean
  };
  static void backward(OpTape<T>& t, const Node<T>& n) {
    Tensor<T>* gx = t.grad_for(n.in[0]);
    if (!gx) return;
    const State& st = state<State>(n);
    if (st.dim == all_dims) {
      const T g = n.grad[0] * st.scale;
      for (Index i = 0; i < gx->numel(); ++i) (*gx)[i] += g;
      return;
    }
    const Tensor<T>* g = &n.grad;
    if (st.scale != T(1)) {
      Tensor<T>& s = t.scratch(detail::scratch_a);
      s = n.grad;
      for (Index i = 0; i < s.numel(); ++i) s[i] *= st.scale;
      g = &s;
    }
    binary(Binary::add, *gx, *g, *gx);
  }
};

template <Scalar T>
Var<T> reduce(const char* op, const Var<T>& x, int dim, bool average) {
  const Tensor<T>& v = x.value();
  const Index count = dim == all_dims ? v.numel() : dim == 0 ? v.rows() : v.cols();
  if (average && count == 0)
    throw std::invalid_argument(std::string(op) + ": mean of an empty tensor");
  const T scale = average ? T(1) / static_cast<T>(count) : T(1);
  Var<T> out;
  Node<T>& n = push<SumOp<T>>(op, &out, {x});
  n.set_state(typename SumOp<T>::State{dim, scale});
  if (dim == all_dims)
    sum(v, n.value);
  else
    sum(v, dim, n.value);
  for (Index i = 0; i < n.value.numel(); ++i) n.value[i] *= scale;
  return out;
}

// y = log sum exp(x) along dim: gx += g * exp(x - y), y and g broadcast along dim.
template <Scalar T>
struct LogSumExpOp {
  static void backward(OpTape<T>& t, const Node<T>& n) {
    Tensor<T>* gx = t.grad_for(n.in[0]);
    if (!gx) return;
    Tensor<T>& s = t.scratch(detail::scratch_a);
    binary(Binary::sub, t.value(n.in[0]), n.value, s);
    unary(Unary::exp, s, s);
    binary(Binary::mul, s, n.grad, s);
    detail::accumulate(t, s, *gx);
  }
};

}  // namespace

template <Scalar T>
Var<T> sum(const Var<T>& x) {
  return reduce("sum", x, all_dims, false);
}
template <Scalar T>
Var<T> sum(const Var<T>& x, int dim) {
  return reduce("sum", x, dim, false);
}
template <Scalar T>
Var<T> mean(const Var<T>& x) {
  return reduce("mean", x, all_dims, true);
}
template <Scalar T>
Var<T> mean(const Var<T>& x, int dim) {
  return reduce("mean", x, dim, true);
}

template <Scalar T>
Var<T> logsumexp(const Var<T>& x, int dim) {
  Var<T> out;
  Node<T>& n = push<LogSumExpOp<T>>("logsumexp", &out, {x});
  logsumexp(x.value(), dim, n.value);
  return out;
}

#define FLOWGRAD_INSTANTIATE(T)             \
  template Var<T> sum(const Var<T>&);       \
  template Var<T> sum(const Var<T>&, int);  \
  template Var<T> mean(const Var<T>&);      \
  template Var<T> mean(const Var<T>&, int); \
  template Var<T> logsumexp(const Var<T>&, int);
FLOWGRAD_FOR_EACH_SCALAR(FLOWGRAD_INSTANTIATE)
#undef FLOWGRAD_INSTANTIATE

}  // namespace flowgrad
