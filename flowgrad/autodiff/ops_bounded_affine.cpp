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

  // Elements run in chunks: each chunk's x, shift and raw log-scale are first copied into lane
  // arrays (zero-padded to whole batches), then run as batches, then written out, with the row and
  // column of each element counted along rather than divided out. A batch loaded straight after
  // the scalar stores of its lanes would wait for them, and a division per element cost as much
  // as the maths.
  static constexpr Index kChunk = 16 * W;
  struct Chunk {
    alignas(64) T x[kChunk], t[kChunk], a[kChunk];
    Index count, batches;  // elements, and whole batches covering them

    void load(const T* xp, const T* p, Index e0, Index total) {
      count = std::min(kChunk, total - e0);
      batches = (count + W - 1) / W;
      std::copy(xp + e0, xp + e0 + count, x);
      const T* pe = p + 2 * e0;
      for (Index l = 0; l < count; ++l) {
        t[l] = pe[2 * l];
        a[l] = pe[2 * l + 1];
      }
      for (Index l = count; l < batches * W; ++l) x[l] = t[l] = a[l] = T(0);
    }
  };

  // Calls f(row, column, first lane, length) for each run of a chunk's elements that lies in one
  // row, from (row, column) on, and moves (row, column) past the chunk. Work per run rather than
  // per element keeps a row's log-det sum in a register instead of re-reading it after every store.
  template <class F>
  static void for_each_run(Index count, Index d, Index& row, Index& col, F&& f) {
    for (Index l = 0; l < count;) {
      const Index run = std::min(d - col, count - l);
      f(row, col, l, run);
      l += run;
      col += run;
      if (col == d) col = 0, ++row;
    }
  }

  static void forward(Node<T>& n, const Tensor<T>& xv, const Tensor<T>& pv, const State& st) {
    const Index rows = xv.rows(), d = xv.cols(), count = rows * d;
    n.value.resize(Shape{rows, d + 1});
    for (Index i = 0; i < rows; ++i) n.value(i, d) = T(0);
    Chunk c;
    alignas(64) T out[kChunk], s_lanes[kChunk];
    Index i = 0, j = 0;  // row and column of the chunk's next element
    for (Index e0 = 0; e0 < count; e0 += kChunk) {
      c.load(xv.data(), pv.data(), e0, count);
      for (Index b = 0; b < c.batches * W; b += W) {
        const V x = V::load_aligned(c.x + b), t = V::load_aligned(c.t + b);
        const V s = st.bound * simd::tanh(V::load_aligned(c.a + b) / st.bound);
        const V y = st.inverse ? (x - t) * simd::exp(-s) : xsimd::fma(x, simd::exp(s), t);
        y.store_aligned(out + b);
        s.store_aligned(s_lanes + b);
      }
      const T sign = st.inverse ? T(-1) : T(1);
      for_each_run(c.count, d, i, j, [&](Index r, Index q, Index l, Index run) {
        T* row = n.value.data() + r * (d + 1);
        T sum = row[d];
        for (Index k = 0; k < run; ++k) {
          row[q + k] = out[l + k];
          sum += sign * s_lanes[l + k];
        }
        row[d] = sum;
      });
    }
  }

  // s = b tanh(a / b), ds/da = 1 - tanh^2. Forward y = x e^s + t, log-det sum s: x gets gy e^s,
  // t gets gy, a gets (gy x e^s + gL) ds/da. Inverse x = (y - t) e^-s, log-det -sum s: y gets
  // gx e^-s, t gets -gx e^-s, a gets -(gx x + gL) ds/da.
  static void backward(OpTape<T>& tape, const Node<T>& n) {
    const State& st = state<State>(n);
    bool x_fresh = false, p_fresh = false;  // written whole below, not added to
    Tensor<T>* gx = tape.grad_for(n.in[0], &x_fresh);
    Tensor<T>* gp = tape.grad_for(n.in[1], &p_fresh);
    if (!gx && !gp) return;
    const Tensor<T>& xv = tape.value(n.in[0]);
    const Tensor<T>& pv = tape.value(n.in[1]);
    const Index d = xv.cols(), count = xv.rows() * d;
    Chunk c;
    alignas(64) T g_in[kChunk], g_t[kChunk], g_a[kChunk], go[kChunk], gl[kChunk];
    Index i = 0, j = 0;
    for (Index e0 = 0; e0 < count; e0 += kChunk) {
      c.load(xv.data(), pv.data(), e0, count);
      Index r0 = i, q0 = j;
      for_each_run(c.count, d, r0, q0, [&](Index r, Index q, Index l, Index run) {
        const T* row = n.grad.data() + r * (d + 1);
        std::copy(row + q, row + q + run, go + l);
        std::fill(gl + l, gl + l + run, row[d]);
      });
      for (Index l = c.count; l < c.batches * W; ++l) go[l] = gl[l] = T(0);
      for (Index b = 0; b < c.batches * W; b += W) {
        const V g_out = V::load_aligned(go + b), g_log = V::load_aligned(gl + b);
        const V x = V::load_aligned(c.x + b), t = V::load_aligned(c.t + b);
        const V th = simd::tanh(V::load_aligned(c.a + b) / st.bound);
        const V s = st.bound * th, ds = V(T(1)) - th * th;
        if (st.inverse) {
          const V scale = simd::exp(-s);
          const V xo = (x - t) * scale;
          (g_out * scale).store_aligned(g_in + b);
          (-g_out * scale).store_aligned(g_t + b);
          (-(g_out * xo + g_log) * ds).store_aligned(g_a + b);
        } else {
          const V scale = simd::exp(s);
          (g_out * scale).store_aligned(g_in + b);
          g_out.store_aligned(g_t + b);
          ((g_out * x * scale + g_log) * ds).store_aligned(g_a + b);
        }
      }
      if (gx) detail::deposit(g_in, c.count, gx->data() + e0, x_fresh);
      if (gp) {
        T* gpe = gp->data() + 2 * e0;
        detail::deposit(g_t, c.count, gpe, p_fresh, 2);
        detail::deposit(g_a, c.count, gpe + 1, p_fresh, 2);
      }
      i = r0;
      j = q0;
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
