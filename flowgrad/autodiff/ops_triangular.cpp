// solve_triangular(): rows x of X solving A x = b for the rows b of B, A triangular, as one node.
//
// X = B A^-T. With G the gradient of X: dX = (dB - X dA^T) A^-T, so B gets H = G A^-1 (rows h
// solving A^T h = g, a triangular solve the other way round) and A gets -H^T X, kept to A's
// triangle (and off its diagonal when the diagonal is a fixed 1). Substitution runs in double per
// row; the node saves nothing, since X is its value.
#include <stdexcept>
#include <string>
#include <vector>

#include "flowgrad/autodiff/detail/op_support.hpp"

namespace flowgrad {

using detail::push;

namespace {

// Solves M z = r in place (r becomes z) for one row, M = A (transpose false) or A^T, where A is
// lower or upper triangular, read in double.
template <Scalar T>
void substitute(const Tensor<T>& a, bool lower, bool unit, bool transpose, std::vector<double>& r) {
  const Index m = a.rows();
  // Solving with A^T turns lower into upper and the other way round.
  const bool forward = lower != transpose;
  auto at = [&](Index i, Index k) { return double(transpose ? a(k, i) : a(i, k)); };
  double* z = r.data();
  if (forward) {
    for (Index i = 0; i < m; ++i) {
      double acc = z[i];
      for (Index k = 0; k < i; ++k) acc -= at(i, k) * z[k];
      z[i] = unit ? acc : acc / at(i, i);
    }
  } else {
    for (Index i = m; i-- > 0;) {
      double acc = z[i];
      for (Index k = i + 1; k < m; ++k) acc -= at(i, k) * z[k];
      z[i] = unit ? acc : acc / at(i, i);
    }
  }
}

template <Scalar T>
struct SolveTriangularOp {
  struct State {
    bool lower, unit;
  };

  static void forward(Node<T>& n, const Tensor<T>& a, const Tensor<T>& b, const State& st) {
    const Index rows = b.rows(), m = b.cols();
    n.value.resize(Shape{rows, m});
    std::vector<double> r(static_cast<std::size_t>(m));
    for (Index i = 0; i < rows; ++i) {
      for (Index j = 0; j < m; ++j) r[static_cast<std::size_t>(j)] = double(b(i, j));
      substitute(a, st.lower, st.unit, false, r);
      for (Index j = 0; j < m; ++j) n.value(i, j) = T(r[static_cast<std::size_t>(j)]);
    }
  }

  static void backward(OpTape<T>& tape, const Node<T>& n) {
    const State& st = state<State>(n);
    Tensor<T>* ga = tape.grad_for(n.in[0]);
    Tensor<T>* gb = tape.grad_for(n.in[1]);
    if (!ga && !gb) return;
    const Tensor<T>& a = tape.value(n.in[0]);
    const Index rows = n.value.rows(), m = n.value.cols();
    std::vector<double> h(static_cast<std::size_t>(m));
    for (Index i = 0; i < rows; ++i) {
      for (Index j = 0; j < m; ++j) h[static_cast<std::size_t>(j)] = double(n.grad(i, j));
      substitute(a, st.lower, st.unit, true, h);  // A^T h = g
      if (gb)
        for (Index j = 0; j < m; ++j) (*gb)(i, j) += T(h[static_cast<std::size_t>(j)]);
      if (ga)
        for (Index p = 0; p < m; ++p)
          for (Index q = 0; q < m; ++q) {
            const bool kept = st.lower ? q <= p : q >= p;
            if (!kept || (st.unit && p == q)) continue;
            (*ga)(p, q) -= T(h[static_cast<std::size_t>(p)] * double(n.value(i, q)));
          }
    }
  }
};

}  // namespace

template <Scalar T>
Var<T> solve_triangular(const Var<T>& a, const Var<T>& b, bool lower, bool unit_diagonal) {
  const Shape as = a.shape(), bs = b.shape();
  if (as.rank() != 2 || as.rows() != as.cols() || bs.rank() != 2 || bs.cols() != as.rows())
    throw std::invalid_argument("solve_triangular: A " + as.str() + " must be square and B " +
                                bs.str() + " must have as many columns as A has rows");
  if (!unit_diagonal)
    for (Index i = 0; i < as.rows(); ++i)
      if (a.value()(i, i) == T(0))
        throw std::invalid_argument("solve_triangular: A is singular (zero at diagonal " +
                                    std::to_string(i) + ")");
  Var<T> out;
  Node<T>& n = push<SolveTriangularOp<T>>("solve_triangular", &out, {a, b});
  const typename SolveTriangularOp<T>::State st{lower, unit_diagonal};
  n.set_state(st);
  SolveTriangularOp<T>::forward(n, a.value(), b.value(), st);
  return out;
}

#define FLOWGRAD_INSTANTIATE(T) \
  template Var<T> solve_triangular(const Var<T>&, const Var<T>&, bool, bool);
FLOWGRAD_FOR_EACH_SCALAR(FLOWGRAD_INSTANTIATE)
#undef FLOWGRAD_INSTANTIATE

}  // namespace flowgrad
