// bounded_affine(): the masked affine autoregressive layer's transform as one node. Written out,
// it was two column selections, a tanh between two scalings, an affine_columns and a row sum:
// seven nodes, each with its pass over the data and its backward; this is one pass each way.
//
// Value [n, d + 1]: the transformed columns, then the log-determinant; the public function hands
// them out as two narrow() views. Nothing is saved for backward: tanh and exp are recomputed.
// Elements run in SIMD batches along the flattened [n, d] input, whose element e has its shift
// and raw log-scale at params[2e] and params[2e + 1].
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "flowgrad/autodiff/detail/op_support.hpp"
#include "flowgrad/tensor/detail/simd.hpp"

namespace flowgrad {

using detail::push;

namespace {

template <Scalar T>
struct BoundedAffineOp {
  using V = simd::batch<T>;
  static constexpr Index W = simd::width<T>;
  struct State {
    T bound;
    bool inverse;
  };

  // Elements [e, e + count) (count <= W) as batches, zero-padded: x, shift, raw log-scale.
  struct Lanes {
    V x, t, a;
  };
  static Lanes load(const T* x, const T* p, Index e, Index count) {
    alignas(64) T xs[W] = {}, ts[W] = {}, as[W] = {};
    for (Index l = 0; l < count; ++l) {
      xs[l] = x[e + l];
      ts[l] = p[2 * (e + l)];
      as[l] = p[2 * (e + l) + 1];
    }
    return {V::load_aligned(xs), V::load_aligned(ts), V::load_aligned(as)};
  }

  static void forward(Node<T>& n, const Tensor<T>& xv, const Tensor<T>& pv, const State& st) {
    const Index rows = xv.rows(), d = xv.cols(), count = rows * d;
    n.value.resize(Shape{rows, d + 1});
    for (Index i = 0; i < rows; ++i) n.value(i, d) = T(0);
    alignas(64) T out[W], s_lanes[W];
    for (Index e = 0; e < count; e += W) {
      const Index c = std::min(W, count - e);
      const Lanes in = load(xv.data(), pv.data(), e, c);
      const V s = st.bound * simd::tanh(in.a / st.bound);
      const V y = st.inverse ? (in.x - in.t) * simd::exp(-s) : xsimd::fma(in.x, simd::exp(s), in.t);
      y.store_aligned(out);
      s.store_aligned(s_lanes);
      for (Index l = 0; l < c; ++l) {
        const Index i = (e + l) / d, j = (e + l) % d;
        n.value(i, j) = out[l];
        n.value(i, d) += st.inverse ? -s_lanes[l] : s_lanes[l];
      }
    }
  }

  // s = b tanh(a / b), ds/da = 1 - tanh^2. Forward y = x e^s + t, log-det sum s: x gets gy e^s,
  // t gets gy, a gets (gy x e^s + gL) ds/da. Inverse x = (y - t) e^-s, log-det -sum s: y gets
  // gx e^-s, t gets -gx e^-s, a gets -(gx x + gL) ds/da.
  static void backward(OpTape<T>& tape, const Node<T>& n) {
    const State& st = state<State>(n);
    Tensor<T>* gx = tape.grad_for(n.in[0]);
    Tensor<T>* gp = tape.grad_for(n.in[1]);
    if (!gx && !gp) return;
    const Tensor<T>& xv = tape.value(n.in[0]);
    const Tensor<T>& pv = tape.value(n.in[1]);
    const Index d = xv.cols(), count = xv.rows() * d;
    alignas(64) T g_in[W], g_t[W], g_a[W], go[W], gl[W];
    for (Index e = 0; e < count; e += W) {
      const Index c = std::min(W, count - e);
      const Lanes in = load(xv.data(), pv.data(), e, c);
      for (Index l = 0; l < W; ++l) {
        const Index i = (e + l) / d, j = (e + l) % d;
        go[l] = l < c ? n.grad(i, j) : T(0);
        gl[l] = l < c ? n.grad(i, d) : T(0);
      }
      const V g_out = V::load_aligned(go), g_log = V::load_aligned(gl);
      const V th = simd::tanh(in.a / st.bound);
      const V s = st.bound * th, ds = V(T(1)) - th * th;
      if (st.inverse) {
        const V scale = simd::exp(-s);
        const V x = (in.x - in.t) * scale;
        (g_out * scale).store_aligned(g_in);
        (-g_out * scale).store_aligned(g_t);
        (-(g_out * x + g_log) * ds).store_aligned(g_a);
      } else {
        const V scale = simd::exp(s);
        (g_out * scale).store_aligned(g_in);
        g_out.store_aligned(g_t);
        ((g_out * in.x * scale + g_log) * ds).store_aligned(g_a);
      }
      for (Index l = 0; l < c; ++l) {
        if (gx) gx->data()[e + l] += g_in[l];
        if (gp) {
          gp->data()[2 * (e + l)] += g_t[l];
          gp->data()[2 * (e + l) + 1] += g_a[l];
        }
      }
    }
  }
};

}  // namespace

template <Scalar T>
AffineResult<T> bounded_affine(const Var<T>& x, const Var<T>& params, std::type_identity_t<T> bound,
                               bool inverse) {
  const Shape xs = x.shape(), ps = params.shape();
  if (!(bound > 0) || !std::isfinite(double(bound)))
    throw std::invalid_argument("bounded_affine: bound must be positive, got " +
                                std::to_string(double(bound)));
  if (xs.rank() != 2 || ps.rank() != 2 || ps.rows() != xs.rows() || ps.cols() != 2 * xs.cols())
    throw std::invalid_argument("bounded_affine: input " + xs.str() + " needs params [" +
                                std::to_string(xs.rank() == 2 ? xs.rows() : 0) + ", " +
                                std::to_string(xs.rank() == 2 ? 2 * xs.cols() : 0) + "], got " +
                                ps.str());
  Var<T> both;
  Node<T>& n = push<BoundedAffineOp<T>>("bounded_affine", &both, {x, params});
  const typename BoundedAffineOp<T>::State st{bound, inverse};
  n.set_state(st);
  BoundedAffineOp<T>::forward(n, x.value(), params.value(), st);
  const Index d = xs.cols();
  return {narrow(both, 0, d), narrow(both, d, 1)};
}

#define FLOWGRAD_INSTANTIATE(T)                                                                  \
  template AffineResult<T> bounded_affine(const Var<T>&, const Var<T>&, std::type_identity_t<T>, \
                                          bool);
FLOWGRAD_FOR_EACH_SCALAR(FLOWGRAD_INSTANTIATE)
#undef FLOWGRAD_INSTANTIATE

}  // namespace flowgrad
