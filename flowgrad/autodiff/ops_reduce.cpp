// Reductions: sum, mean and logsumexp. dim -1 in a node's aux means "everything".
#include <string>

#include "flowgrad/autodiff/detail/op_support.hpp"

namespace flowgrad {

using detail::push;

namespace {

constexpr int all_dims = -1;

// gx += c0 * g broadcast back over the reduced dimension(s).
template <Scalar T>
struct SumOp {
  static void backward(Tape<T>& t, const Node<T>& n) {
    Tensor<T>* gx = t.grad_for(n.in[0]);
    if (!gx) return;
    if (n.aux == all_dims) {
      const T g = n.grad[0] * n.c0;
      for (Index i = 0; i < gx->numel(); ++i) (*gx)[i] += g;
      return;
    }
    const Tensor<T>* g = &n.grad;
    if (n.c0 != T(1)) {
      Tensor<T>& s = t.scratch(detail::scratch_a);
      s = n.grad;
      for (Index i = 0; i < s.numel(); ++i) s[i] *= n.c0;
      g = &s;
    }
    binary(Binary::add, *gx, *g, *gx);
  }
};

template <Scalar T>
Var<T> reduce(const char* op, const Var<T>& x, int dim, bool average) {
  Var<T> out;
  Node<T>& n = push<SumOp<T>>(op, &out, {x});
  const Tensor<T>& v = x.tape().value(x.index());
  n.aux = dim;
  if (dim == all_dims)
    sum(v, n.value);
  else
    sum(v, dim, n.value);
  const Index count = dim == all_dims ? v.numel() : dim == 0 ? v.rows() : v.cols();
  if (average && count == 0)
    throw std::invalid_argument(std::string(op) + ": mean of an empty tensor");
  n.c0 = average ? T(1) / static_cast<T>(count) : T(1);
  for (Index i = 0; i < n.value.numel(); ++i) n.value[i] *= n.c0;
  return out;
}

// y = log sum exp(x) along dim: gx += g * exp(x - y), y and g broadcast along dim.
template <Scalar T>
struct LogSumExpOp {
  static void backward(Tape<T>& t, const Node<T>& n) {
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
  logsumexp(x.tape().value(x.index()), dim, n.value);
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
