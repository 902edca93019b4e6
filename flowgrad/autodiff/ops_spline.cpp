// rational_quadratic_spline(): the monotone rational-quadratic spline of Durkan et al. 2019
// ("Neural Spline Flows"), elementwise, with its log-derivative, forward and inverse, as one node.
//
// One node, two outputs. The node's value is [n, 2m]: the transformed values in columns [0, m),
// the per-element log-derivatives in [m, 2m); the public function hands them out as two narrow()
// views. Both outputs come from the same per-element quantities (bin, knots, derivatives), and
// the inverse's gradients need both upstream gradients at once (the log-derivative depends on the
// solved x), so one backward rule that sees both is simpler and does the per-element work once;
// the two narrow nodes cost a copy of n x 2m numbers.
//
// The per-element work (forward, and the backward's recomputation) is a kernel of
// tensor/spline.cpp, compiled per ISA; this file is the node.
#include <cmath>
#include <stdexcept>
#include <string>

#include "flowgrad/autodiff/detail/op_support.hpp"
#include "flowgrad/tensor/detail/spline.hpp"

namespace flowgrad {

using detail::push;

namespace {

// Inputs: x (or y), params. Value [n, 2m]: the output, then the log-derivatives.
template <Scalar T>
struct SplineOp {
  using State = detail::SplineSettings;

  static void forward(Node<T>& n, const Tensor<T>& xv, const Tensor<T>& pv, const State& st) {
    detail::spline_forward(xv, pv, st, n.value);
  }

  // The gradients of both outputs at once (the inverse's need both): see tensor/spline.cpp.
  static void backward(OpTape<T>& tape, const Node<T>& n) {
    Tensor<T>* gx = tape.grad_for(n.in[0]);
    Tensor<T>* gp = tape.grad_for(n.in[1]);
    if (!gx && !gp) return;
    detail::spline_backward(tape.value(n.in[0]), tape.value(n.in[1]), n.grad, state<State>(n), gx,
                            gp);
  }
};

}  // namespace

template <Scalar T>
SplineResult<T> rational_quadratic_spline(const Var<T>& x, const Var<T>& params, Index bins,
                                          std::type_identity_t<T> tail_bound, bool inverse,
                                          double logit_scale) {
  const Shape xs = x.shape(), ps = params.shape();
  if (bins < 1 || bins > detail::spline_max_bins)
    throw std::invalid_argument("rational_quadratic_spline: bins must be in 1.." +
                                std::to_string(detail::spline_max_bins) + ", got " +
                                std::to_string(bins));
  if (!(tail_bound > 0) || !std::isfinite(double(tail_bound)))
    throw std::invalid_argument("rational_quadratic_spline: tail_bound must be positive, got " +
                                std::to_string(double(tail_bound)));
  if (!(logit_scale > 0) || !std::isfinite(logit_scale))
    throw std::invalid_argument("rational_quadratic_spline: logit_scale must be positive, got " +
                                std::to_string(logit_scale));
  const Index P = 3 * bins - 1;
  if (xs.rank() != 2 || ps.rank() != 2 || ps.rows() != xs.rows() || ps.cols() != xs.cols() * P)
    throw std::invalid_argument(
        "rational_quadratic_spline: input " + xs.str() + " with " + std::to_string(bins) +
        " bins needs params [" + std::to_string(xs.rank() == 2 ? xs.rows() : 0) + ", " +
        std::to_string(xs.rank() == 2 ? xs.cols() * P : 0) + "], got " + ps.str());
  Var<T> both;
  Node<T>& n = push<SplineOp<T>>("rational_quadratic_spline", &both, {x, params});
  const typename SplineOp<T>::State st{bins, double(tail_bound), inverse, logit_scale};
  n.set_state(st);
  SplineOp<T>::forward(n, x.value(), params.value(), st);
  const Index m = xs.cols();
  return {narrow(both, 0, m), narrow(both, m, m)};
}

#define FLOWGRAD_INSTANTIATE(T)                                                           \
  template SplineResult<T> rational_quadratic_spline(const Var<T>&, const Var<T>&, Index, \
                                                     std::type_identity_t<T>, bool, double);
FLOWGRAD_FOR_EACH_SCALAR(FLOWGRAD_INSTANTIATE)
#undef FLOWGRAD_INSTANTIATE

}  // namespace flowgrad
