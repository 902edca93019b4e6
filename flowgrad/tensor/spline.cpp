// The rational-quadratic spline's elementwise work (detail/spline.hpp), for the node of
// autodiff/ops_spline.cpp. Compiled once per ISA.
//
// The work is done in double whatever T is (a float spline is then as accurate as its float
// inputs allow), on SIMD batches of double with one element per lane: a group of W consecutive
// elements (W = the batch width) runs every step of the spline at once, the bin search and the
// per-bin lookups as K compare-and-selects, so no lane branches. Nothing is allocated (a group's
// parameters sit in a stack array) and nothing is saved for backward: the backward recomputes each
// group's knots and bins from the inputs, which costs O(K) per element, like the forward.
// Elements are split between threads in whole groups from element 0, so every element is computed
// the same way at any thread count (bit-identical results within one ISA).
#include "flowgrad/tensor/detail/isa_prelude.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "flowgrad/tensor/detail/isa_kernels.hpp"
#include "flowgrad/tensor/detail/simd.hpp"
#include "flowgrad/tensor/detail/spline.hpp"
#include "flowgrad/tensor/detail/transpose.hpp"

namespace flowgrad::FLOWGRAD_ISA_NS {

namespace {

using V = simd::batch<double>;
using Mask = xsimd::batch_bool<double>;
constexpr Index W = simd::width<double>;

constexpr double min_bin = 1e-3;         // m: the smallest bin width and height (fractions)
constexpr double min_derivative = 1e-3;  // m_d: the smallest interior knot derivative
constexpr Index max_bins = ::flowgrad::detail::spline_max_bins;
constexpr Index max_params = 3 * max_bins - 1;

// e^d for d <= 0 (or NaN), in SIMD throughout: d = k ln 2 + r with |r| <= ln 2 / 2 (ln 2 split in
// two, its high part short enough that k ln2_hi is exact), e^r by its Taylor polynomial to r^13
// (the first term left out is below 1e-17 of it), times 2^k written into the exponent bits: k is
// read from the mantissa of k + 1.5 * 2^52. Within an ulp, as xsimd's exp, which converts k to
// int64 one lane at a time with a C++ cast (on both paths; hence simd::exp's wrapper); 0 below
// -708.39, where xsimd's exp also gives 0; NaN stays NaN.
V exp_nonpositive(V d) {
  using I = xsimd::batch<std::int64_t, simd::arch>;
  // clang-format off
  constexpr double inverse_factorial[14] = {
      1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
      1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800};
  // clang-format on
  const V magic(6755399441055744.0);  // 1.5 * 2^52
  const V k = xsimd::nearbyint(d * V(1.4426950408889634));
  V r = xsimd::fnma(k, V(6.93147180369123816490e-01), d);
  r = xsimd::fnma(k, V(1.90821492927058770002e-10), r);
  V p(inverse_factorial[13]);
  for (int n = 12; n >= 0; --n) p = xsimd::fma(p, r, V(inverse_factorial[n]));
  const I ki = xsimd::bitwise_cast<I>(k + magic) - xsimd::bitwise_cast<I>(magic);
  const V two_k = xsimd::bitwise_cast<V>((ki + I(1023)) << 52);
  return xsimd::select(d < V(-708.39641853226408), V(0.0), p * two_k);
}

V softplus(V z) { return xsimd::max(z, V(0.0)) + xsimd::log1p(exp_nonpositive(-xsimd::abs(z))); }
// 1 / (1 + e^-z) from e = e^-|z|: 1 / (1 + e) for z >= 0, e / (1 + e) below.
V sigmoid(V z) {
  const V e = exp_nonpositive(-xsimd::abs(z));
  return xsimd::select(z >= V(0.0), V(1.0), e) / (V(1.0) + e);
}

// One group of W elements: lane l is element e0 + l. z[q] holds parameter q of every lane.
struct Group {
  alignas(64) double z[max_params][W];
  V v;          // x (forward) or y (inverse)
  Index valid;  // lanes holding real elements; the rest are zeros, a valid spline, ignored

  V param(Index q) const { return V::load_aligned(z[q]); }
};

static_assert(W == 8 || W == 4, "a batch of double is 512 or 256 bits");

// W floats from f, widened to double. (A template, so that only the branch of this ISA's width
// is compiled.)
template <class F>
V widen(const F* f) {
  if constexpr (W == 8)
    return V(_mm512_cvtps_pd(_mm256_loadu_ps(f)));
  else
    return V(_mm256_cvtps_pd(_mm_loadu_ps(f)));
}

// A whole group of float parameters (P >= W): each W x W block of (lane, parameter) goes through
// registers into rows of W lanes, widened to double a row at a time. The last block starts at
// P - W and overlaps the one before it, rewriting a few rows with the same values, so that no lane
// reads past its own parameters. (AVX2 gathers, tried instead, were slower on Zen 4 than the
// scalar loop of load_group.)
void load_whole_group(Group& g, const float* x, const float* p, Index P, Index logits,
                      double logit_scale) {
  alignas(32) float rows[W][W];
  for (Index q0 = 0; q0 < P; q0 += W) {
    const Index q = std::min(q0, P - W);
    if constexpr (W == 8)
      detail::transpose_block(p + q, P, &rows[0][0], W);
    else
      detail::transpose_block_4x4(p + q, P, &rows[0][0], W);
    for (Index r = 0; r < W; ++r) {
      const V v = widen(rows[r]);
      (q + r < logits ? v * logit_scale : v).store_aligned(g.z[q + r]);
    }
  }
  g.v = widen(x);
}

// The reverse of load_whole_group's blocks: adds rows q = 0..W-1 of dl (W lanes of double each),
// narrowed to float, to each lane l's W parameters at out + l * P. The same roundings as the
// scalar loop (narrow, then add in float), W at a time.
template <class F>
void add_lane_block(const double (*dl)[W], F* out, Index P) {
  alignas(32) float rows[W][W], lanes[W][W];
  for (Index r = 0; r < W; ++r) {
    if constexpr (W == 8)
      _mm256_store_ps(rows[r], _mm512_cvtpd_ps(_mm512_load_pd(dl[r])));
    else
      _mm_store_ps(rows[r], _mm256_cvtpd_ps(_mm256_load_pd(dl[r])));
  }
  if constexpr (W == 8) {
    detail::transpose_block(&rows[0][0], W, &lanes[0][0], W);
    for (Index l = 0; l < W; ++l) {
      F* o = out + l * P;
      _mm256_storeu_ps(o, _mm256_add_ps(_mm256_loadu_ps(o), _mm256_load_ps(lanes[l])));
    }
  } else {
    detail::transpose_block_4x4(&rows[0][0], W, &lanes[0][0], W);
    for (Index l = 0; l < W; ++l) {
      F* o = out + l * P;
      _mm_storeu_ps(o, _mm_add_ps(_mm_loadu_ps(o), _mm_load_ps(lanes[l])));
    }
  }
}

// Parameters q < 2K (the width and height logits) are multiplied by logit_scale. Whole groups of
// float go through load_whole_group. Otherwise each lane's parameters are read in order and spread
// over z; the batches are loaded from z only later, once all these stores are done: a batch loaded
// straight after its lanes' scalar stores cannot take them from the store buffer and waits until
// they reach the cache.
template <class T>
void load_group(Group& g, const T* x, const T* p, Index e0, Index count, Index K,
                double logit_scale) {
  const Index P = 3 * K - 1;
  g.valid = std::min(W, count - e0);
  if constexpr (std::is_same_v<T, float>)
    if (g.valid == W && P >= W)
      return load_whole_group(g, x + e0, p + e0 * P, P, 2 * K, logit_scale);
  for (Index l = 0; l < W; ++l) {
    const T* pl = p + (e0 + l) * P;
    const bool real = l < g.valid;
    for (Index q = 0; q < 2 * K; ++q) g.z[q][l] = real ? double(pl[q]) * logit_scale : 0.0;
    for (Index q = 2 * K; q < P; ++q) g.z[q][l] = real ? double(pl[q]) : 0.0;
  }
  alignas(64) double lanes[W];
  for (Index l = 0; l < W; ++l) lanes[l] = l < g.valid ? double(x[e0 + l]) : 0.0;
  g.v = V::load_aligned(lanes);
}

// Widths (or heights) as fractions w = m + (1 - mK) softmax(logits), and the knots they make:
// c_0 = -B, c_k = -B + 2B cumsum(w), c_K = B exactly.
void fractions_and_knots(const Group& g, Index first, Index K, double B, V* s, V* c) {
  V mx = g.param(first);
  for (Index k = 1; k < K; ++k) mx = xsimd::max(mx, g.param(first + k));
  V total(0.0);
  for (Index k = 0; k < K; ++k) total += s[k] = exp_nonpositive(g.param(first + k) - mx);
  for (Index k = 0; k < K; ++k) s[k] /= total;
  const double scale = 1 - min_bin * double(K);
  V acc(0.0);
  c[0] = V(-B);
  for (Index k = 1; k < K; ++k) {
    acc += min_bin + scale * s[k - 1];
    c[k] = -B + 2 * B * acc;
  }
  c[K] = V(B);
}

// The spline of a group: each lane's bin and the quantities of that bin.
struct Spline {
  V sw[max_bins], sh[max_bins];          // width and height fractions (softmax part)
  V cx[max_bins + 1], cy[max_bins + 1];  // knots
  V bin;                                 // k, as a double
  V xk, xk1, yk, yk1;                    // the bin's knots
  V W_, H, d0, d1, s;                    // its size, end derivatives and slope H / W
  V zd0, zd1;                            // the derivative logits behind d0, d1 (0 at the ends)
  Mask inside;                           // -B <= v <= B

  void build(const Group& g, Index K, double B, bool inverse) {
    fractions_and_knots(g, 0, K, B, sw, cx);
    fractions_and_knots(g, K, K, B, sh, cy);
    const V* c_in = inverse ? cy : cx;
    // The bin holding v: c_k <= v < c_{k+1}, the last knot counted as +inf so v = B is in K - 1.
    bin = V(0.0);
    for (Index k = 1; k < K; ++k) bin += xsimd::select(g.v >= c_in[k], V(1.0), V(0.0));
    xk = cx[0], yk = cy[0], xk1 = cx[1], yk1 = cy[1];
    zd0 = V(0.0), zd1 = K > 1 ? g.param(2 * K) : V(0.0);
    for (Index k = 1; k < K; ++k) {
      const Mask here = bin == V(double(k));
      xk = xsimd::select(here, cx[k], xk);
      yk = xsimd::select(here, cy[k], yk);
      xk1 = xsimd::select(here, cx[k + 1], xk1);
      yk1 = xsimd::select(here, cy[k + 1], yk1);
      zd0 = xsimd::select(here, g.param(2 * K + k - 1), zd0);
      if (k + 1 < K) zd1 = xsimd::select(here, g.param(2 * K + k), zd1);
    }
    // Boundary derivatives are 1; interior ones m_d + softplus(logit).
    d0 = xsimd::select(bin == V(0.0), V(1.0), min_derivative + softplus(zd0));
    d1 = xsimd::select(bin == V(double(K - 1)), V(1.0), min_derivative + softplus(zd1));
    W_ = xk1 - xk;
    H = yk1 - yk;
    s = H / W_;
    inside = (g.v >= V(-B)) & (g.v <= V(B));
  }

  // xi in [0, 1] with y = yk + H R(xi): the root of a xi^2 + b xi + c = 0 in the form that does
  // not cancel (c <= 0 <= b; the denominator is 0 only where D = 0 and b = 0, which H d0 > 0
  // rules out, kept at xi = 0 all the same).
  V solve_xi(V y) const {
    const V D = y - yk;
    const V c2 = d0 + d1 - 2 * s;
    const V a = H * (s - d0) + D * c2;
    const V b = H * d0 - D * c2;
    const V c = -s * D;
    const V denom = -b - xsimd::sqrt(xsimd::max(b * b - 4 * a * c, V(0.0)));
    const V xi = xsimd::select(denom == V(0.0), V(0.0), 2 * c / denom);
    return xsimd::min(xsimd::max(xi, V(0.0)), V(1.0));
  }
};

// The spline in one bin, y = yk + H (s xi^2 + d0 xi (1 - xi)) / den, den = s + (d0 + d1 - 2 s)
// xi (1 - xi), and L = log dy/dx = log(s^2 (d1 xi^2 + 2 s xi (1 - xi) + d0 (1 - xi)^2) / den^2),
// with xi = (x - xk) / W and s = H / W; with partials, dy and dL with respect to the inputs
// (x, xk, W, yk, H, d0, d1), first in (xi, s, d0, d1) and then chained.
enum { P_x, P_xk, P_W, P_yk, P_H, P_d0, P_d1, P_count };

struct BinEval {
  V y, L;
  V dy[P_count], dL[P_count];
};

BinEval eval_bin(const Spline& sp, V xi, bool partials) {
  BinEval e;
  const V s = sp.s, d0 = sp.d0, d1 = sp.d1, H = sp.H, Wb = sp.W_;
  const V t = xi * (1 - xi);
  const V c = d0 + d1 - 2 * s;
  const V num = s * xi * xi + d0 * t;
  const V den = s + c * t;
  const V R = num / den;
  const V q = d1 * xi * xi + 2 * s * t + d0 * (1 - xi) * (1 - xi);
  e.y = sp.yk + H * R;
  e.L = xsimd::log(s * s * q / (den * den));  // one log: all four factors are positive
  if (!partials) return e;
  const V num_xi = 2 * s * xi + d0 * (1 - 2 * xi), num_s = xi * xi, num_d0 = t;
  const V den_xi = c * (1 - 2 * xi), den_s = 1 - 2 * t, den_d = t;
  const V q_xi = 2 * d1 * xi + 2 * s * (1 - 2 * xi) - 2 * d0 * (1 - xi);
  const V q_s = 2 * t, q_d0 = (1 - xi) * (1 - xi), q_d1 = xi * xi;
  const V y_xi = H * (num_xi - R * den_xi) / den;
  const V y_s = H * (num_s - R * den_s) / den;
  const V y_d0 = H * (num_d0 - R * den_d) / den;
  const V y_d1 = H * (-R * den_d) / den;
  const V L_xi = q_xi / q - 2 * den_xi / den;
  const V L_s = 2 / s + q_s / q - 2 * den_s / den;
  const V L_d0 = q_d0 / q - 2 * den_d / den;
  const V L_d1 = q_d1 / q - 2 * den_d / den;
  // xi = (x - xk) / W, s = H / W; y also holds H outside s (H R).
  e.dy[P_x] = y_xi / Wb;
  e.dy[P_xk] = -y_xi / Wb;
  e.dy[P_W] = -(y_xi * xi + y_s * s) / Wb;
  e.dy[P_yk] = V(1.0);
  e.dy[P_H] = R + y_s / Wb;
  e.dy[P_d0] = y_d0;
  e.dy[P_d1] = y_d1;
  e.dL[P_x] = L_xi / Wb;
  e.dL[P_xk] = -L_xi / Wb;
  e.dL[P_W] = -(L_xi * xi + L_s * s) / Wb;
  e.dL[P_yk] = V(0.0);
  e.dL[P_H] = L_s / Wb;
  e.dL[P_d0] = L_d0;
  e.dL[P_d1] = L_d1;
  return e;
}

// body(e0, e1) over element ranges that start at multiples of W, split between threads once a
// share is worth a fork/join (an element costs about as much as a dozen transcendental functions).
template <class F>
void for_groups(Index count, F&& body) {
  simd::parallel_for(simd::threads_for(count, simd::kGrainMath / 8), count, W, body);
}

}  // namespace

template <class T>
void spline_forward(const Tensor<T>& xv, const Tensor<T>& pv,
                    const ::flowgrad::detail::SplineSettings& st, Tensor<T>& out_t) {
  const Index rows = xv.rows(), m = xv.cols(), K = st.bins;
  out_t.resize(Shape{rows, 2 * m});
  for_groups(rows * m, [&](Index e0, Index e1) {
    Group g;
    Spline sp;
    alignas(64) double out[W], log_det[W];
    for (Index e = e0; e < e1; e += W) {
      load_group(g, xv.data(), pv.data(), e, e1, K, st.logit_scale);
      sp.build(g, K, st.bound, st.inverse);
      V o, L;
      if (st.inverse) {
        const V xi = sp.solve_xi(g.v);
        // At xi = 1 the upper knot itself, so that +-B map to +-B exactly.
        o = xsimd::select(xi >= V(1.0), sp.xk1, sp.xk + xi * sp.W_);
        L = -eval_bin(sp, xi, false).L;
      } else {
        const V xi = (g.v - sp.xk) / sp.W_;
        const BinEval ev = eval_bin(sp, xi, false);
        o = xsimd::select(xi >= V(1.0), sp.yk1, ev.y);
        L = ev.L;
      }
      xsimd::select(sp.inside, o, g.v).store_aligned(out);
      xsimd::select(sp.inside, L, V(0.0)).store_aligned(log_det);
      for (Index l = 0, i = e / m, j = e % m; l < g.valid; ++l) {
        out_t(i, j) = T(out[l]);
        out_t(i, m + j) = T(log_det[l]);
        if (++j == m) j = 0, ++i;
      }
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
template <class T>
void spline_backward(const Tensor<T>& xv, const Tensor<T>& pv, const Tensor<T>& grad,
                     const ::flowgrad::detail::SplineSettings& st, Tensor<T>* gx, Tensor<T>* gp) {
  if (!gx && !gp) return;
  const Index m = xv.cols(), K = st.bins, P = 3 * K - 1;
  const double B = st.bound, scale = 1 - min_bin * double(K);
  for_groups(xv.rows() * m, [&](Index e0, Index e1) {
    Group g;
    Spline sp;
    alignas(64) double lanes[W], d0_lanes[W], d1_lanes[W], k_lanes[W];
    alignas(64) double dlogits[max_params][W];
    for (Index e = e0; e < e1; e += W) {
      load_group(g, xv.data(), pv.data(), e, e1, K, st.logit_scale);
      sp.build(g, K, B, st.inverse);
      alignas(64) double go[W], gl[W];
      for (Index l = 0, i = e / m, j = e % m; l < W; ++l) {
        const bool real = l < g.valid;
        go[l] = real ? double(grad(i, j)) : 0.0;
        gl[l] = real ? double(grad(i, m + j)) : 0.0;
        if (real && ++j == m) j = 0, ++i;
      }
      const V g_out = V::load_aligned(go), g_log = V::load_aligned(gl);
      const V xi = st.inverse ? sp.solve_xi(g.v) : (g.v - sp.xk) / sp.W_;
      const BinEval ev = eval_bin(sp, xi, true);
      V alpha, beta, g_in;
      if (st.inverse) {
        g_in = (g_out - g_log * ev.dL[P_x]) / ev.dy[P_x];
        alpha = -g_in;
        beta = -g_log;
      } else {
        alpha = g_out;
        beta = g_log;
        g_in = alpha * ev.dy[P_x] + beta * ev.dL[P_x];
      }
      if (gx) {
        xsimd::select(sp.inside, g_in, g_out).store_aligned(lanes);
        for (Index l = 0, i = e / m, j = e % m; l < g.valid; ++l) {
          (*gx)(i, j) += T(lanes[l]);
          if (++j == m) j = 0, ++i;
        }
      }
      if (!gp) continue;
      // Parameters outside [-B, B] get nothing: every bin gradient is masked there.
      V gb[P_count];
      for (int q = 0; q < P_count; ++q)
        gb[q] = xsimd::select(sp.inside, alpha * ev.dy[q] + beta * ev.dL[q], V(0.0));
      // Widths (g_xk, g_W) and heights (g_yk, g_H) through the cumulative sums and softmax:
      // dw_q = 2B (g_knot [q < k] + g_bin [q == k]).
      const auto logits = [&](const V* s, V g_knot, V g_bin, Index offset) {
        V below(0.0), s_k(0.0);
        for (Index q = 0; q < K; ++q) {
          below += xsimd::select(V(double(q)) < sp.bin, s[q], V(0.0));
          s_k = xsimd::select(V(double(q)) == sp.bin, s[q], s_k);
        }
        const V dot = 2 * B * (g_knot * below + g_bin * s_k);
        for (Index q = 0; q < K; ++q) {
          const V dw = 2 * B *
                       (xsimd::select(V(double(q)) < sp.bin, g_knot, V(0.0)) +
                        xsimd::select(V(double(q)) == sp.bin, g_bin, V(0.0)));
          (scale * st.logit_scale * s[q] * (dw - dot)).store_aligned(dlogits[offset + q]);
        }
      };
      logits(sp.sw, gb[P_xk], gb[P_W], 0);
      logits(sp.sh, gb[P_yk], gb[P_H], K);
      // The two derivative logits of each lane's bin (none at the ends, where d is fixed at 1).
      (gb[P_d0] * sigmoid(sp.zd0)).store_aligned(d0_lanes);
      (gb[P_d1] * sigmoid(sp.zd1)).store_aligned(d1_lanes);
      sp.bin.store_aligned(k_lanes);
      Index q_whole = 0;  // logits [0, q_whole) added by whole blocks
      if constexpr (std::is_same_v<T, float>)
        if (g.valid == W)
          for (; q_whole + W <= 2 * K; q_whole += W)
            add_lane_block(dlogits + q_whole, gp->data() + e * P + q_whole, P);
      for (Index l = 0; l < g.valid; ++l) {
        T* out = gp->data() + (e + l) * P;
        for (Index q = q_whole; q < 2 * K; ++q) out[q] += T(dlogits[q][l]);
        const auto k = static_cast<Index>(k_lanes[l]);
        if (k > 0) out[2 * K + k - 1] += T(d0_lanes[l]);
        if (k + 1 < K) out[2 * K + k] += T(d1_lanes[l]);
      }
    }
  });
}

#define FLOWGRAD_INSTANTIATE(T)                                                        \
  template void spline_forward(const Tensor<T>&, const Tensor<T>&,                     \
                               const ::flowgrad::detail::SplineSettings&, Tensor<T>&); \
  template void spline_backward(const Tensor<T>&, const Tensor<T>&, const Tensor<T>&,  \
                                const ::flowgrad::detail::SplineSettings&, Tensor<T>*, \
                                Tensor<T>*);
FLOWGRAD_INSTANTIATE(float)
FLOWGRAD_INSTANTIATE(double)
#undef FLOWGRAD_INSTANTIATE

}  // namespace flowgrad::FLOWGRAD_ISA_NS
