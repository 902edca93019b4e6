// rational_quadratic_spline(): gradients in both directions against central differences, the
// log-derivative against a difference of y, inverse(forward(x)) = x, monotonicity, the identity
// tails and continuity at the bound, and float against double.
#include <doctest/doctest.h>

#include <array>

#include <cmath>
#include <vector>

#include "flowgrad/autodiff/gradcheck.hpp"
#include "flowgrad/autodiff/ops.hpp"
#include "flowgrad/tensor/random.hpp"
#include "gradcheck_helpers.hpp"

namespace flowgrad {
namespace {

// The knots of one element, computed here independently of the op: x knots, then y knots.
struct RefKnots {
  std::vector<double> cx, cy;
};
RefKnots ref_knots(const Tensor<double>& p, Index row, Index col, Index K, double B) {
  const Index P = 3 * K - 1;
  RefKnots r;
  for (int which = 0; which < 2; ++which) {
    std::vector<double> z(static_cast<std::size_t>(K));
    double mx = -1e300;
    for (Index k = 0; k < K; ++k) {
      z[static_cast<std::size_t>(k)] = p(row, col * P + which * K + k);
      mx = std::max(mx, z[static_cast<std::size_t>(k)]);
    }
    double total = 0;
    for (double& v : z) total += v = std::exp(v - mx);
    std::vector<double>& c = which == 0 ? r.cx : r.cy;
    c.push_back(-B);
    double acc = 0;
    for (Index k = 0; k + 1 < K; ++k) {
      acc += 1e-3 + (1 - 1e-3 * double(K)) * z[static_cast<std::size_t>(k)] / total;
      c.push_back(-B + 2 * B * acc);
    }
    c.push_back(B);
  }
  return r;
}

Tensor<double> random_params(Generator& gen, Index n, Index m, Index K) {
  return gen.normal<double>(Shape{n, m * (3 * K - 1)});
}

// Points for each element of an [n, m] input: inside a bin, 1e-4 either side of an interior knot,
// or in a tail, in turn. `on_y` places them by the y knots (for the inverse).
Tensor<double> probe_points(Generator& gen, const Tensor<double>& p, Index n, Index m, Index K,
                            double B, bool on_y) {
  Tensor<double> x(Shape{n, m});
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < m; ++j) {
      const RefKnots kn = ref_knots(p, i, j, K, B);
      const std::vector<double>& c = on_y ? kn.cy : kn.cx;
      const Index e = i * m + j;
      const Index k = static_cast<Index>(gen.below(static_cast<std::uint64_t>(K)));
      const double lo = c[static_cast<std::size_t>(k)], hi = c[static_cast<std::size_t>(k + 1)];
      switch (e % 5) {
        case 0:
        case 1:  // inside bin k, away from its ends
          x(i, j) = lo + (hi - lo) * (0.1 + 0.8 * gen.uniform());
          break;
        case 2:  // just right of a knot (bin k's left knot; -B + 1e-4 when k = 0)
          x(i, j) = lo + 1e-4;
          break;
        case 3:  // just left of a knot
          x(i, j) = hi - 1e-4;
          break;
        default:  // a tail
          x(i, j) = (gen.uniform() < 0.5 ? -1 : 1) * (B + 0.05 + gen.uniform());
      }
    }
  return x;
}

template <Scalar T>
SplineResult<T> run_spline(Tape<T>& t, const Tensor<T>& x, const Tensor<T>& p, Index K, T B,
                           bool inverse) {
  return rational_quadratic_spline(t.constant(x), t.constant(p), K, B, inverse);
}

const Index bin_counts[] = {2, 5, 8};

}  // namespace

TEST_CASE("rational_quadratic_spline: gradcheck of y and log|dy/dx|, forward and inverse") {
  const double B = 3;
  for (Index K : bin_counts)
    for (bool inverse : {false, true})
      for (int output = 0; output < 2; ++output) {
        CAPTURE(K);
        CAPTURE(inverse);
        CAPTURE(output);
        Generator gen(static_cast<std::uint64_t>(11 + K));
        const Index n = 6, m = 3;
        const Tensor<double> p = random_params(gen, n, m, K);
        const Tensor<double> x = probe_points(gen, p, n, m, K, B, inverse);
        GradcheckOptions opts;
        // Near a knot of a narrow bin the inverse curves hard: there the central difference's
        // O(eps^2) error reaches 1.5e-5 relative at eps = 1e-6 (it shrinks to 1e-9 at eps = 1e-8,
        // where the analytic value is matched), so the inverse gets a looser relative tolerance.
        if (inverse) opts.rtol = 1e-4;
        CHECK_GRADCHECK(gradcheck(
            [&](Tape<double>&, std::span<const Var<double>> in) {
              const SplineResult<double> r = rational_quadratic_spline(in[0], in[1], K, B, inverse);
              return testing::weighted_sum(output == 0 ? r.out : r.log_det);
            },
            {x, p}, opts));
        // Both outputs at once, as a flow uses them.
        CHECK_GRADCHECK(gradcheck(
            [&](Tape<double>&, std::span<const Var<double>> in) {
              const SplineResult<double> r = rational_quadratic_spline(in[0], in[1], K, B, inverse);
              return add(testing::weighted_sum(r.out, 5), testing::weighted_sum(r.log_det, 6));
            },
            {x, p}, opts));
      }
}

TEST_CASE("rational_quadratic_spline: logit_scale is the spline of scaled logits, gradients too") {
  const double B = 3, a = 0.4;
  for (Index K : bin_counts)
    for (bool inverse : {false, true}) {
      CAPTURE(K);
      CAPTURE(inverse);
      Generator gen(static_cast<std::uint64_t>(31 + K));
      const Index n = 7, m = 3, P = 3 * K - 1;
      const Tensor<double> p = random_params(gen, n, m, K);
      Tensor<double> scaled = p;
      for (Index e = 0; e < n * m; ++e)
        for (Index q = 0; q < 2 * K; ++q) scaled[e * P + q] *= a;
      const Tensor<double> x = probe_points(gen, scaled, n, m, K, B, inverse);
      const Tensor<double> w = gen.normal<double>(Shape{n, m});
      auto run = [&](const Tensor<double>& params, double logit_scale) {
        Tape<double> t;
        const Var<double> xv = t.constant(x, true), pv = t.constant(params, true);
        const auto r = rational_quadratic_spline(xv, pv, K, B, inverse, logit_scale);
        t.backward(add(sum(mul(r.out, t.constant(w))), sum(r.log_det)));
        return std::array<Tensor<double>, 4>{r.out.value(), r.log_det.value(), xv.grad(),
                                             pv.grad()};
      };
      const auto inside = run(p, a), outside = run(scaled, 1);
      for (int part = 0; part < 3; ++part)
        for (Index i = 0; i < x.numel(); ++i)
          CHECK(inside[part][i] == doctest::Approx(outside[part][i]).epsilon(1e-12));
      // d/dp = a d/d(scaled) on the width and height logits, the same on the derivative logits.
      for (Index e = 0; e < n * m; ++e)
        for (Index q = 0; q < P; ++q)
          CHECK(inside[3][e * P + q] ==
                doctest::Approx((q < 2 * K ? a : 1.0) * outside[3][e * P + q]).epsilon(1e-10));
    }
  Tape<double> t;
  const auto x = t.constant(Tensor<double>(Shape{1, 1}, 0.0));
  const auto p = t.constant(Tensor<double>(Shape{1, 5}, 0.0));
  CHECK_THROWS_AS(rational_quadratic_spline(x, p, 2, 3.0, false, 0.0), std::invalid_argument);
}

TEST_CASE("rational_quadratic_spline: log|dy/dx| is the log of a central difference of y") {
  const double B = 2.5, h = 1e-6;
  for (Index K : bin_counts) {
    CAPTURE(K);
    Generator gen(static_cast<std::uint64_t>(40 + K));
    const Index n = 8, m = 5;
    const Tensor<double> p = random_params(gen, n, m, K);
    const Tensor<double> x = probe_points(gen, p, n, m, K, B, false);
    Tensor<double> up = x, down = x;
    for (Index i = 0; i < x.numel(); ++i) {
      up[i] += h;
      down[i] -= h;
    }
    Tape<double> t;
    const auto r = run_spline(t, x, p, K, B, false);
    const auto ru = run_spline(t, up, p, K, B, false);
    const auto rd = run_spline(t, down, p, K, B, false);
    for (Index i = 0; i < x.numel(); ++i) {
      const double numeric = (ru.out.value()[i] - rd.out.value()[i]) / (2 * h);
      CAPTURE(x[i]);
      CHECK(std::abs(r.log_det.value()[i] - std::log(numeric)) < 1e-6);
    }
    // The inverse's log-derivative is minus the forward's at the matching point.
    const auto back = run_spline(t, r.out.value(), p, K, B, true);
    for (Index i = 0; i < x.numel(); ++i)
      CHECK(std::abs(back.log_det.value()[i] + r.log_det.value()[i]) < 1e-10);
  }
}

TEST_CASE("rational_quadratic_spline: inverse(forward(x)) = x, at knots and at the bound too") {
  const double B = 3;
  for (Index K : bin_counts) {
    CAPTURE(K);
    Generator gen(static_cast<std::uint64_t>(70 + K));
    const Index n = 10;
    const Tensor<double> p = random_params(gen, n, 1, K);
    // Per row: every knot exactly, within 1e-6 (and 1e-12) of each knot on both sides, +-B,
    // the middle of each bin, and the tails.
    std::vector<std::vector<double>> rows;
    for (Index i = 0; i < n; ++i) {
      const RefKnots kn = ref_knots(p, i, 0, K, B);
      std::vector<double> pts{-B, B, -B - 1, B + 1, -B - 1e-9, B + 1e-9};
      for (std::size_t k = 0; k < kn.cx.size(); ++k) {
        for (double off : {0.0, 1e-6, -1e-6, 5e-7, -5e-7, 1e-12, -1e-12})
          pts.push_back(kn.cx[k] + off);
        if (k + 1 < kn.cx.size()) pts.push_back((kn.cx[k] + kn.cx[k + 1]) / 2);
      }
      rows.push_back(pts);
    }
    const Index cols = static_cast<Index>(rows[0].size());
    Tensor<double> x(Shape{n, cols});
    Tensor<double> pp(Shape{n, cols * (3 * K - 1)});
    for (Index i = 0; i < n; ++i)
      for (Index j = 0; j < cols; ++j) {
        x(i, j) = rows[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)];
        for (Index q = 0; q < 3 * K - 1; ++q) pp(i, j * (3 * K - 1) + q) = p(i, q);
      }
    Tape<double> t;
    const auto fwd = run_spline(t, x, pp, K, B, false);
    const auto back = run_spline(t, fwd.out.value(), pp, K, B, true);
    for (Index i = 0; i < x.numel(); ++i) {
      CAPTURE(x[i]);
      CHECK(std::abs(back.out.value()[i] - x[i]) <= 1e-9);
      CHECK(std::abs(back.log_det.value()[i] + fwd.log_det.value()[i]) <= 1e-8);
    }
    // And the other way: forward(inverse(y)) = y.
    const auto inv = run_spline(t, x, pp, K, B, true);
    const auto again = run_spline(t, inv.out.value(), pp, K, B, false);
    for (Index i = 0; i < x.numel(); ++i) CHECK(std::abs(again.out.value()[i] - x[i]) <= 1e-9);
  }
}

TEST_CASE("rational_quadratic_spline: increasing, identity in the tails, continuous at +-B") {
  const double B = 2;
  for (Index K : bin_counts) {
    CAPTURE(K);
    Generator gen(static_cast<std::uint64_t>(90 + K));
    const Tensor<double> p1 = gen.normal<double>(Shape{1, 3 * K - 1}, 0.0, 2.0);
    const Index cols = 4001;
    Tensor<double> x(Shape{1, cols}), p(Shape{1, cols * (3 * K - 1)});
    for (Index j = 0; j < cols; ++j) {
      x[j] = -B - 1 + 2 * (B + 1) * double(j) / double(cols - 1);
      for (Index q = 0; q < 3 * K - 1; ++q) p[j * (3 * K - 1) + q] = p1[q];
    }
    Tape<double> t;
    const auto r = run_spline(t, x, p, K, B, false);
    const Tensor<double>& y = r.out.value();
    for (Index j = 1; j < cols; ++j) CHECK(y[j] > y[j - 1]);
    for (Index j = 0; j < cols; ++j)
      if (std::abs(x[j]) > B) {
        CHECK(y[j] == x[j]);
        CHECK(r.log_det.value()[j] == 0);
      } else {
        CHECK(std::abs(y[j]) <= B);
      }
    // At the bound: y(+-B) = +-B and the derivative is 1 from inside too.
    Tensor<double> edge(Shape{1, 4}), pe(Shape{1, 4 * (3 * K - 1)});
    const double at[] = {-B, B, -B + 1e-9, B - 1e-9};
    for (Index j = 0; j < 4; ++j) {
      edge[j] = at[j];
      for (Index q = 0; q < 3 * K - 1; ++q) pe[j * (3 * K - 1) + q] = p1[q];
    }
    const auto re = run_spline(t, edge, pe, K, B, false);
    CHECK(re.out.value()[0] == -B);
    CHECK(re.out.value()[1] == B);
    CHECK(std::abs(re.log_det.value()[0]) < 1e-12);
    CHECK(std::abs(re.log_det.value()[1]) < 1e-12);
    // 1e-9 inside, log dy/dx moves by 1e-9 times its slope, which a narrow end bin makes large.
    CHECK(std::abs(re.log_det.value()[2]) < 1e-5);
    CHECK(std::abs(re.log_det.value()[3]) < 1e-5);
    CHECK(std::abs(re.out.value()[2] - at[2]) < 1e-15 + 2e-9);
    CHECK(std::abs(re.out.value()[3] - at[3]) < 1e-15 + 2e-9);
  }
}

TEST_CASE("rational_quadratic_spline: float agrees with double, values and gradients") {
  const double B = 3;
  for (Index K : bin_counts)
    for (bool inverse : {false, true}) {
      CAPTURE(K);
      CAPTURE(inverse);
      Generator gen(static_cast<std::uint64_t>(120 + K));
      // 51 elements: whole groups of lanes and a short last one, on either ISA path.
      const Index n = 17, m = 3;
      const Tensor<double> p = random_params(gen, n, m, K);
      Tensor<double> x = probe_points(gen, p, n, m, K, B, inverse);
      // The double reference runs on the float-rounded inputs, so only the arithmetic differs.
      Tensor<float> xf(x.shape()), pf(p.shape());
      Tensor<double> pd = p;
      for (Index i = 0; i < x.numel(); ++i) x[i] = double(xf[i] = float(x[i]));
      for (Index i = 0; i < p.numel(); ++i) pd[i] = double(pf[i] = float(p[i]));
      const Tensor<double> w = Generator(5).normal<double>(x.shape());
      Tensor<float> wf(w.shape());
      for (Index i = 0; i < w.numel(); ++i) wf[i] = float(w[i]);

      Tape<double> td;
      const Var<double> xd = td.constant(x, true), pdv = td.constant(pd, true);
      const auto rd = rational_quadratic_spline(xd, pdv, K, B, inverse);
      td.backward(add(sum(mul(rd.out, td.constant(w))), sum(rd.log_det)));
      Tape<float> tf;
      const Var<float> xfv = tf.constant(xf, true), pfv = tf.constant(pf, true);
      const auto rf = rational_quadratic_spline(xfv, pfv, K, float(B), inverse);
      tf.backward(add(sum(mul(rf.out, tf.constant(wf))), sum(rf.log_det)));
      for (Index i = 0; i < x.numel(); ++i) {
        CHECK(std::abs(double(rf.out.value()[i]) - rd.out.value()[i]) < 1e-6);
        CHECK(std::abs(double(rf.log_det.value()[i]) - rd.log_det.value()[i]) < 1e-6);
        CHECK(std::abs(double(xfv.grad()[i]) - xd.grad()[i]) < 1e-5 * (1 + std::abs(xd.grad()[i])));
      }
      for (Index i = 0; i < p.numel(); ++i)
        CHECK(std::abs(double(pfv.grad()[i]) - pdv.grad()[i]) <
              1e-5 * (1 + std::abs(pdv.grad()[i])));
    }
}

TEST_CASE("rational_quadratic_spline: rejects bad shapes and settings") {
  Tape<double> t;
  const Var<double> x = t.constant(Tensor<double>(Shape{2, 3}, 0.0));
  CHECK_THROWS_AS(
      rational_quadratic_spline(x, t.constant(Tensor<double>(Shape{2, 14}, 0.0)), 5, 3.0),
      std::invalid_argument);
  const Var<double> p = t.constant(Tensor<double>(Shape{2, 42}, 0.0));
  CHECK_NOTHROW(rational_quadratic_spline(x, p, 5, 3.0));
  CHECK_THROWS_AS(rational_quadratic_spline(x, p, 5, -1.0), std::invalid_argument);
  CHECK_THROWS_AS(rational_quadratic_spline(x, p, 0, 3.0), std::invalid_argument);
  // Zero logits: equal bins, derivatives 1e-3 + log 2 inside; still a bijection of [-3, 3].
  const auto r = rational_quadratic_spline(x, p, 5, 3.0);
  for (Index i = 0; i < 6; ++i) CHECK(r.out.value()[i] == doctest::Approx(0.0));
}

}  // namespace flowgrad
