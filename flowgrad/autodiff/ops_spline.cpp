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
// Per element the work is done in double whatever T is (a float spline is then as accurate as
// its float inputs allow), on stack arrays of at most max_bins + 1 knots: nothing is allocated.
// Nothing is saved for backward either: the rule recomputes the element's knots and bin from the
// inputs, which costs O(K) per element, like the forward. The 2K exponentials of the two softmaxes
// dominate that cost and run on SIMD batches; of the K - 1 interior derivatives only the element's
// bin's two are computed. Elements are independent, so rows are split between threads, and every
// element is computed the same way at any thread count (bit-identical results).
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "flowgrad/autodiff/detail/op_support.hpp"
#include "flowgrad/tensor/detail/simd.hpp"

namespace flowgrad {

using detail::push;

namespace {

constexpr double min_bin = 1e-3;         // m: the smallest bin width and height (fractions)
constexpr double min_derivative = 1e-3;  // m_d: the smallest interior knot derivative
constexpr Index max_bins = 128;          // knots live on the stack

double softplus_d(double z) { return std::max(z, 0.0) + std::log1p(std::exp(-std::abs(z))); }
double sigmoid_d(double z) {
  if (z >= 0) return 1 / (1 + std::exp(-z));
  const double e = std::exp(z);
  return e / (1 + e);
}

// One element's spline: K widths and heights as softmax fractions and the knots they make.
struct Knots {
  double sw[max_bins];      // softmax of the width logits
  double sh[max_bins];      // softmax of the height logits
  double cx[max_bins + 1];  // x knots, cx[0] = -B, cx[K] = B
  double cy[max_bins + 1];  // y knots

  template <class T>
  void build(const T* p, Index K, double B) {
    softmax(p, K, sw);
    softmax(p + K, K, sh);
    knots(sw, K, B, cx);
    knots(sh, K, B, cy);
  }
  // The derivative at knot k: 1 at the two ends, m_d + softplus(logit) inside.
  template <class T>
  static double derivative(const T* p, Index K, Index k) {
    return k == 0 || k == K ? 1.0 : min_derivative + softplus_d(double(p[2 * K + k - 1]));
  }

  template <class T>
  static void softmax(const T* z, Index K, double* s) {
    using Batch = simd::batch<double>;
    constexpr Index w = simd::width<double>;
    double mx = double(z[0]);
    for (Index k = 1; k < K; ++k) mx = std::max(mx, double(z[k]));
    // exp on whole batches, the tail padded: each s[k] is the same whatever K's remainder.
    alignas(64) double shifted[max_bins + w];
    for (Index k = 0; k < K; ++k) shifted[k] = double(z[k]) - mx;
    for (Index k = K; k < (K + w - 1) / w * w; ++k) shifted[k] = 0;
    for (Index k = 0; k < K; k += w)
      simd::exp(Batch::load_aligned(shifted + k)).store_aligned(shifted + k);
    double total = 0;
    for (Index k = 0; k < K; ++k) total += s[k] = shifted[k];
    for (Index k = 0; k < K; ++k) s[k] /= total;
  }
  // c_0 = -B, c_k = -B + 2B cumsum(m + (1 - m K) s), c_K = B exactly.
  static void knots(const double* s, Index K, double B, double* c) {
    const double scale = 1 - min_bin * double(K);
    double acc = 0;
    c[0] = -B;
    for (Index k = 1; k < K; ++k) {
      acc += min_bin + scale * s[k - 1];
      c[k] = -B + 2 * B * acc;
    }
    c[K] = B;
  }
  // The bin holding v: c[k] <= v < c[k + 1], the last knot nudged up so v = B lands in bin K - 1.
  static Index bin(const double* c, Index K, double v) {
    const double* end = c + K + 1;
    Index k = static_cast<Index>(std::upper_bound(c, end - 1, v) - c) - 1;
    return std::clamp<Index>(k, 0, K - 1);
  }
};

// The spline in one bin and its partial derivatives. Inputs, in this order:
// x, xk (bin's left x knot), W (bin width), yk, H (bin height), d0 = d_k, d1 = d_{k+1}.
enum { P_x, P_xk, P_W, P_yk, P_H, P_d0, P_d1, P_count };

struct BinEval {
  double y, L;         // y and log dy/dx
  double dy[P_count];  // dy / d(input)
  double dL[P_count];  // dL / d(input)
};

// y = yk + H (s xi^2 + d0 xi (1 - xi)) / den, den = s + (d0 + d1 - 2 s) xi (1 - xi),
// L = 2 log s + log(d1 xi^2 + 2 s xi (1 - xi) + d0 (1 - xi)^2) - 2 log den,
// with xi = (x - xk) / W and s = H / W. Partials first in (xi, s, d0, d1), then chained.
BinEval eval_bin(double xi, double W, double yk, double H, double d0, double d1, bool partials) {
  BinEval e{};
  const double s = H / W;
  const double t = xi * (1 - xi);
  const double c = d0 + d1 - 2 * s;
  const double num = s * xi * xi + d0 * t;
  const double den = s + c * t;
  const double R = num / den;
  const double q = d1 * xi * xi + 2 * s * t + d0 * (1 - xi) * (1 - xi);
  e.y = yk + H * R;
  e.L = std::log(s * s * q / (den * den));  // one log: all four factors are positive
  if (!partials) return e;
  // numerator, denominator and q against xi, s, d0, d1
  const double num_xi = 2 * s * xi + d0 * (1 - 2 * xi), num_s = xi * xi, num_d0 = t, num_d1 = 0;
  const double den_xi = c * (1 - 2 * xi), den_s = 1 - 2 * t, den_d0 = t, den_d1 = t;
  const double q_xi = 2 * d1 * xi + 2 * s * (1 - 2 * xi) - 2 * d0 * (1 - xi);
  const double q_s = 2 * t, q_d0 = (1 - xi) * (1 - xi), q_d1 = xi * xi;
  const double y_xi = H * (num_xi - R * den_xi) / den;
  const double y_s = H * (num_s - R * den_s) / den;
  const double y_d0 = H * (num_d0 - R * den_d0) / den;
  const double y_d1 = H * (num_d1 - R * den_d1) / den;
  const double L_xi = q_xi / q - 2 * den_xi / den;
  const double L_s = 2 / s + q_s / q - 2 * den_s / den;
  const double L_d0 = q_d0 / q - 2 * den_d0 / den;
  const double L_d1 = q_d1 / q - 2 * den_d1 / den;
  // xi = (x - xk) / W, s = H / W; y also holds H outside s (H R).
  e.dy[P_x] = y_xi / W;
  e.dy[P_xk] = -y_xi / W;
  e.dy[P_W] = -(y_xi * xi + y_s * s) / W;
  e.dy[P_yk] = 1;
  e.dy[P_H] = R + y_s / W;
  e.dy[P_d0] = y_d0;
  e.dy[P_d1] = y_d1;
  e.dL[P_x] = L_xi / W;
  e.dL[P_xk] = -L_xi / W;
  e.dL[P_W] = -(L_xi * xi + L_s * s) / W;
  e.dL[P_yk] = 0;
  e.dL[P_H] = L_s / W;
  e.dL[P_d0] = L_d0;
  e.dL[P_d1] = L_d1;
  return e;
}

// xi in [0, 1] with y = yk + H R(xi): the root of a xi^2 + b xi + c = 0 in the form that does not
// cancel (c <= 0 <= b).
double solve_xi(double y, double yk, double H, double s, double d0, double d1) {
  const double D = y - yk;
  const double c2 = d0 + d1 - 2 * s;
  const double a = H * (s - d0) + D * c2;
  const double b = H * d0 - D * c2;
  const double c = -s * D;
  const double disc = std::max(b * b - 4 * a * c, 0.0);
  const double denom = -b - std::sqrt(disc);
  if (denom == 0) return 0;  // D = 0 and b = 0 cannot both hold (H d0 > 0); kept for safety
  return std::clamp(2 * c / denom, 0.0, 1.0);
}

struct Element {
  bool inside;
  Index k;
  double xi;  // position in the bin (the solved one, for the inverse)
  BinEval e;  // at (x, bin): forward quantities
};

// One element: v is x (forward) or y (inverse); p its 3K - 1 parameters.
template <class T>
Element run(const Knots& kn, const T* p, Index K, double B, double v, bool inverse, bool partials) {
  Element el{};
  if (v < -B || v > B) {
    el.inside = false;
    return el;
  }
  el.inside = true;
  const double* c_in = inverse ? kn.cy : kn.cx;
  const Index k = Knots::bin(c_in, K, v);
  el.k = k;
  const double W = kn.cx[k + 1] - kn.cx[k], H = kn.cy[k + 1] - kn.cy[k];
  const double d0 = Knots::derivative(p, K, k), d1 = Knots::derivative(p, K, k + 1);
  if (inverse)
    el.xi = solve_xi(v, kn.cy[k], H, H / W, d0, d1);
  else
    el.xi = (v - kn.cx[k]) / W;
  el.e = eval_bin(el.xi, W, kn.cy[k], H, d0, d1, partials);
  return el;
}

// body(i0, i1) over row ranges, split between threads once a share is worth a fork/join (an
// element costs about as much as a dozen transcendental functions).
template <class F>
void for_rows(Index rows, Index m, F&& body) {
  const Index grain = std::max<Index>(1, (simd::kGrainMath / 8 + m - 1) / m);
  simd::parallel_for(simd::threads_for(rows, grain), rows, 1, body);
}

// Inputs: x (or y), params. Value [n, 2m]: the output, then the log-derivatives.
template <Scalar T>
struct SplineOp {
  struct State {
    Index bins;
    double bound;
    bool inverse;
  };

  static void forward(Node<T>& n, const Tensor<T>& xv, const Tensor<T>& pv, const State& st) {
    const Index rows = xv.rows(), m = xv.cols(), K = st.bins, P = 3 * K - 1;
    n.value.resize(Shape{rows, 2 * m});
    for_rows(rows, m, [&](Index i0, Index i1) {
      Knots kn;
      for (Index i = i0; i < i1; ++i)
        for (Index j = 0; j < m; ++j) {
          const double v = double(xv(i, j));
          const T* p = pv.data() + i * m * P + j * P;
          kn.build(p, K, st.bound);
          const Element el = run(kn, p, K, st.bound, v, st.inverse, false);
          T out = T(v), logdet = T(0);
          if (el.inside) {
            // At xi = 1 the upper knot itself, so that +-B map to +-B exactly.
            const Index k = el.k;
            if (st.inverse) {
              out = T(el.xi >= 1 ? kn.cx[k + 1] : kn.cx[k] + el.xi * (kn.cx[k + 1] - kn.cx[k]));
              logdet = T(-el.e.L);
            } else {
              out = T(el.xi >= 1 ? kn.cy[k + 1] : el.e.y);
              logdet = T(el.e.L);
            }
          }
          n.value(i, j) = out;
          n.value(i, m + j) = logdet;
        }
    });
  }

  // Forward: with gy, gL the gradients of y and L, every input v gets gy dy/dv + gL dL/dv.
  // Inverse (x = F^-1(y; theta), output log-derivative -L(x; theta)): with a = gx - gL' L_x the
  // gradient reaching the solved x, y gets a / F_x and each spline input theta gets
  // -(a / F_x) F_theta - gL' L_theta (implicit differentiation of F(x; theta) = y).
  // Then knots to logits: x_k = -B + 2B sum_{j<k} w_j, W_k = 2B w_k (the same as the difference
  // of knots, up to a multiple of sum(w) - 1 whose gradient the softmax projects out), w = m +
  // (1 - mK) softmax(z): dz = (1 - mK) s * (dw - <dw, s>); d_k = m_d + softplus(z): dz = dd
  // sigmoid(z). Outside [-B, B] the map is the identity and the parameters get nothing.
  static void backward(OpTape<T>& tape, const Node<T>& n) {
    const State& st = state<State>(n);
    Tensor<T>* gx = tape.grad_for(n.in[0]);
    Tensor<T>* gp = tape.grad_for(n.in[1]);
    if (!gx && !gp) return;
    const Tensor<T>& xv = tape.value(n.in[0]);
    const Tensor<T>& pv = tape.value(n.in[1]);
    const Index rows = xv.rows(), m = xv.cols(), K = st.bins, P = 3 * K - 1;
    const double B = st.bound, scale = 1 - min_bin * double(K);
    for_rows(rows, m, [&](Index i0, Index i1) {
      Knots kn;
      for (Index i = i0; i < i1; ++i)
        for (Index j = 0; j < m; ++j) {
          const double g_out = double(n.grad(i, j)), g_log = double(n.grad(i, m + j));
          const double v = double(xv(i, j));
          if (v < -B || v > B) {
            if (gx) (*gx)(i, j) += T(g_out);
            continue;
          }
          const T* p = pv.data() + i * m * P + j * P;
          kn.build(p, K, B);
          const Element el = run(kn, p, K, B, v, st.inverse, true);
          const BinEval& e = el.e;
          double alpha, beta, g_in;
          if (st.inverse) {
            const double a = g_out - g_log * e.dL[P_x];
            g_in = a / e.dy[P_x];
            alpha = -g_in;
            beta = -g_log;
          } else {
            alpha = g_out;
            beta = g_log;
            g_in = alpha * e.dy[P_x] + beta * e.dL[P_x];
          }
          if (gx) (*gx)(i, j) += T(g_in);
          if (!gp) continue;
          double g[P_count];
          for (int q = 0; q < P_count; ++q) g[q] = alpha * e.dy[q] + beta * e.dL[q];
          const Index k = el.k;
          T* gpp = gp->data() + i * m * P + j * P;
          // widths (g_xk, g_W) and heights (g_yk, g_H) through the cumulative sums and softmax
          const auto logits = [&](const double* s, double g_knot, double g_bin, T* out) {
            // dw_j = 2B (g_knot [j < k] + g_bin [j == k])
            double below = 0;
            for (Index q = 0; q < k; ++q) below += s[q];
            const double dot = 2 * B * (g_knot * below + g_bin * s[k]);
            for (Index q = 0; q < K; ++q) {
              const double dw = 2 * B * ((q < k ? g_knot : 0.0) + (q == k ? g_bin : 0.0));
              out[q] += T(scale * s[q] * (dw - dot));
            }
          };
          logits(kn.sw, g[P_xk], g[P_W], gpp);
          logits(kn.sh, g[P_yk], g[P_H], gpp + K);
          if (k > 0) gpp[2 * K + k - 1] += T(g[P_d0] * sigmoid_d(double(p[2 * K + k - 1])));
          if (k + 1 < K) gpp[2 * K + k] += T(g[P_d1] * sigmoid_d(double(p[2 * K + k])));
        }
    });
  }
};

}  // namespace

template <Scalar T>
SplineResult<T> rational_quadratic_spline(const Var<T>& x, const Var<T>& params, Index bins,
                                          std::type_identity_t<T> tail_bound, bool inverse) {
  const Shape xs = x.shape(), ps = params.shape();
  if (bins < 1 || bins > max_bins)
    throw std::invalid_argument("rational_quadratic_spline: bins must be in 1.." +
                                std::to_string(max_bins) + ", got " + std::to_string(bins));
  if (!(tail_bound > 0) || !std::isfinite(double(tail_bound)))
    throw std::invalid_argument("rational_quadratic_spline: tail_bound must be positive, got " +
                                std::to_string(double(tail_bound)));
  const Index P = 3 * bins - 1;
  if (xs.rank() != 2 || ps.rank() != 2 || ps.rows() != xs.rows() || ps.cols() != xs.cols() * P)
    throw std::invalid_argument(
        "rational_quadratic_spline: input " + xs.str() + " with " + std::to_string(bins) +
        " bins needs params [" + std::to_string(xs.rank() == 2 ? xs.rows() : 0) + ", " +
        std::to_string(xs.rank() == 2 ? xs.cols() * P : 0) + "], got " + ps.str());
  Var<T> both;
  Node<T>& n = push<SplineOp<T>>("rational_quadratic_spline", &both, {x, params});
  const typename SplineOp<T>::State st{bins, double(tail_bound), inverse};
  n.set_state(st);
  SplineOp<T>::forward(n, x.value(), params.value(), st);
  const Index m = xs.cols();
  return {narrow(both, 0, m), narrow(both, m, m)};
}

#define FLOWGRAD_INSTANTIATE(T)                                                           \
  template SplineResult<T> rational_quadratic_spline(const Var<T>&, const Var<T>&, Index, \
                                                     std::type_identity_t<T>, bool);
FLOWGRAD_FOR_EACH_SCALAR(FLOWGRAD_INSTANTIATE)
#undef FLOWGRAD_INSTANTIATE

}  // namespace flowgrad
