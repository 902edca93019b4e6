// The FFJORD toy datasets against their formulas (docs/design.md §6). CSV loading, splits and
// batches are tested in test_data.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <set>
#include <string>
#include <vector>

#include "toy_datasets.hpp"

using namespace train2d;
using flowgrad::Shape;

namespace {

constexpr double pi = std::numbers::pi;

TensorF draw(const std::string& name, Index n, std::uint64_t seed = 7) {
  Generator gen(seed);
  return sample_toy(name, n, gen);
}

bool same(const TensorF& a, const TensorF& b) {
  if (!(a.shape() == b.shape())) return false;
  for (Index i = 0; i < a.numel(); ++i)
    if (a[i] != b[i]) return false;
  return true;
}

double radius(const TensorF& t, Index i) { return std::hypot(double(t(i, 0)), double(t(i, 1))); }

struct Mean2 {
  double x = 0, y = 0;
};
Mean2 mean_of(const TensorF& t) {
  Mean2 m;
  for (Index i = 0; i < t.rows(); ++i) {
    m.x += t(i, 0);
    m.y += t(i, 1);
  }
  m.x /= double(t.rows());
  m.y /= double(t.rows());
  return m;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The generators in general

TEST_CASE("toy datasets: names, shapes, finite values") {
  CHECK(toy_dataset_names().size() == 8);
  for (const auto& name : toy_dataset_names()) {
    CAPTURE(name);
    CHECK(is_toy_dataset(name));
    for (Index n : {1000, 1003, 7}) {
      CAPTURE(n);
      const TensorF t = draw(name, n);
      const Index expected = name == "pinwheel"   ? 5 * (n / 5)
                             : name == "2spirals" ? 2 * (n / 2)
                                                  : n;
      CHECK(t.rows() == expected);
      CHECK(t.cols() == 2);
      bool finite = true;
      for (Index i = 0; i < t.numel(); ++i) finite = finite && std::isfinite(t[i]);
      CHECK(finite);
    }
  }
  CHECK_FALSE(is_toy_dataset("Moons"));
  CHECK(draw("moons", 1).rows() == 1);
  CHECK(draw("rings", 3).rows() == 3);  // every point on the last ring
}

TEST_CASE("toy datasets: bad name or count") {
  Generator gen(0);
  CHECK_THROWS_WITH_AS(sample_toy("spiral", 10, gen), doctest::Contains("unknown dataset 'spiral'"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      sample_toy("spiral", 10, gen),
      doctest::Contains(
          "moons, 8gaussians, circles, rings, pinwheel, 2spirals, checkerboard, swissroll"),
      std::invalid_argument);
  for (const auto& name : toy_dataset_names()) {
    CAPTURE(name);
    CHECK_THROWS_AS(sample_toy(name, 0, gen), std::invalid_argument);
    CHECK_THROWS_AS(sample_toy(name, -3, gen), std::invalid_argument);
  }
  CHECK_THROWS_WITH_AS(sample_toy("pinwheel", 4, gen), doctest::Contains("at least 5"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(sample_toy("2spirals", 1, gen), doctest::Contains("at least 2"),
                       std::invalid_argument);
  CHECK(sample_toy("pinwheel", 5, gen).rows() == 5);
  CHECK(sample_toy("2spirals", 2, gen).rows() == 2);
}

TEST_CASE("toy datasets: a seed fixes the points, another seed changes them") {
  for (const auto& name : toy_dataset_names()) {
    CAPTURE(name);
    CHECK(same(draw(name, 500, 3), draw(name, 500, 3)));
    CHECK_FALSE(same(draw(name, 500, 3), draw(name, 500, 4)));
    // Consecutive draws from one generator differ too.
    Generator gen(3);
    const TensorF a = sample_toy(name, 500, gen);
    const TensorF b = sample_toy(name, 500, gen);
    CHECK_FALSE(same(a, b));
  }
}

// ---------------------------------------------------------------------------------------------
// Each generator against its formula

TEST_CASE("checkerboard: every point on a black square, about 1/8 of the points on each") {
  const Index n = 80000;
  const TensorF t = draw("checkerboard", n);
  std::array<Index, 16> counts{};
  Index outside = 0, white = 0;
  double offset_sum = 0;
  for (Index i = 0; i < n; ++i) {
    const double x = t(i, 0), y = t(i, 1);
    if (!(x >= -4 && x < 4 && y >= -4 && y < 4)) {
      ++outside;
      continue;
    }
    const auto cx = static_cast<int>(std::floor(x / 2)), cy = static_cast<int>(std::floor(y / 2));
    if ((cx + cy) % 2 != 0) ++white;  // floor(x/2) + floor(y/2) is even on the black squares
    ++counts[static_cast<std::size_t>((cx + 2) * 4 + (cy + 2))];
    offset_sum += (x - 2 * cx) + (y - 2 * cy);
  }
  CHECK(outside == 0);
  CHECK(white == 0);
  Index black_squares = 0;
  for (int cx = -2; cx < 2; ++cx)
    for (int cy = -2; cy < 2; ++cy) {
      const Index c = counts[static_cast<std::size_t>((cx + 2) * 4 + (cy + 2))];
      if ((cx + cy) % 2 != 0) continue;
      ++black_squares;
      CAPTURE(cx);
      CAPTURE(cy);
      // n/8 = 10000 with a binomial sd of about 94.
      CHECK(std::abs(double(c) - n / 8.0) < 500);
    }
  CHECK(black_squares == 8);
  // Uniform within a square: the offsets from the corner average 1 per coordinate.
  CHECK(offset_sum / (2.0 * n) == doctest::Approx(1.0).epsilon(0.01));
}

TEST_CASE("rings: radii cluster at 3, 2.25, 1.5 and 0.75, a quarter on each") {
  const Index n = 40000;
  const TensorF t = draw("rings", n);
  const std::array<double, 4> modes = {3.0, 2.25, 1.5, 0.75};
  std::array<Index, 4> near{};
  Index far = 0;
  for (Index i = 0; i < n; ++i) {
    const double r = radius(t, i);
    bool hit = false;
    for (std::size_t k = 0; k < 4; ++k)
      if (std::abs(r - modes[k]) < 0.3) {
        ++near[k];
        hit = true;
      }
    if (!hit) ++far;
  }
  CHECK(far < n / 200);  // the radial noise has sd 0.08: 0.3 is almost 4 sd
  for (std::size_t k = 0; k < 4; ++k) {
    CAPTURE(modes[k]);
    CHECK(std::abs(double(near[k]) - n / 4.0) < 0.02 * n);
  }
  // A histogram of radii with 0.05-wide bins peaks at the four radii, with troughs between them.
  std::vector<Index> hist(80);
  for (Index i = 0; i < n; ++i) {
    const auto b = static_cast<std::size_t>(radius(t, i) / 0.05);
    if (b < hist.size()) ++hist[b];
  }
  const auto bin = [&](double r) { return hist[static_cast<std::size_t>(r / 0.05)]; };
  for (double m : modes) {
    CAPTURE(m);
    CHECK(bin(m + 0.01) > 10 * bin(m + 0.375));
    if (m > 1) CHECK(bin(m - 0.01) > 10 * bin(m - 0.375));
  }
  // The shuffle mixes the rings: the first quarter of the rows is not one ring.
  std::set<int> rings_in_head;
  for (Index i = 0; i < 100; ++i)
    rings_in_head.insert(static_cast<int>(std::lround(radius(t, i) / 0.75)));
  CHECK(rings_in_head.size() == 4);
}

TEST_CASE("circles: half the points near radius 3, half near 1.5") {
  const Index n = 40000;
  const TensorF t = draw("circles", n);
  std::array<double, 2> sum{}, sum_sq{};
  std::array<Index, 2> count{};
  for (Index i = 0; i < n; ++i) {
    const double r = radius(t, i);
    const std::size_t k = r > 2.25 ? 0 : 1;
    ++count[k];
    sum[k] += r;
    sum_sq[k] += r * r;
  }
  const std::array<double, 2> modes = {3.0, 1.5};
  for (std::size_t k = 0; k < 2; ++k) {
    CAPTURE(modes[k]);
    const double mean = sum[k] / double(count[k]);
    const double sd = std::sqrt(sum_sq[k] / double(count[k]) - mean * mean);
    CHECK(std::abs(double(count[k]) - n / 2.0) < 0.01 * n);
    CHECK(mean == doctest::Approx(modes[k]).epsilon(0.02));
    CHECK(sd == doctest::Approx(0.24).epsilon(0.1));  // 3 * 0.08
  }
  const Mean2 m = mean_of(t);
  CHECK(std::abs(m.x) < 0.05);
  CHECK(std::abs(m.y) < 0.05);
}

TEST_CASE("8gaussians: balanced clusters around 8 centres of radius 4/1.414, sd 0.5/1.414") {
  const Index n = 40000;
  const TensorF t = draw("8gaussians", n);
  const double s = 1 / std::sqrt(2.0);
  const double cx[8] = {1, -1, 0, 0, s, s, -s, -s};
  const double cy[8] = {0, 0, 1, -1, s, -s, s, -s};
  std::array<Index, 8> count{};
  std::array<double, 8> sq{}, sx{}, sy{};
  double worst = 0;
  for (Index i = 0; i < n; ++i) {
    std::size_t best = 0;
    double best_d = 1e300;
    for (std::size_t k = 0; k < 8; ++k) {
      const double d = std::hypot(t(i, 0) - 4 * cx[k] / 1.414, t(i, 1) - 4 * cy[k] / 1.414);
      if (d < best_d) {
        best_d = d;
        best = k;
      }
    }
    worst = std::max(worst, best_d);
    ++count[best];
    sx[best] += t(i, 0) - 4 * cx[best] / 1.414;
    sy[best] += t(i, 1) - 4 * cy[best] / 1.414;
    sq[best] += best_d * best_d;
  }
  const double sd = 0.5 / 1.414;
  CHECK(worst < 6 * sd);
  for (std::size_t k = 0; k < 8; ++k) {
    CAPTURE(k);
    CHECK(std::abs(double(count[k]) - n / 8.0) < 0.012 * n);
    // Per coordinate sd of the offsets: sqrt(mean squared distance / 2).
    CHECK(std::sqrt(sq[k] / double(count[k]) / 2) == doctest::Approx(sd).epsilon(0.05));
    CHECK(std::abs(sx[k] / double(count[k])) < 0.03);
    CHECK(std::abs(sy[k] / double(count[k])) < 0.03);
  }
}

TEST_CASE("moons: mean as the noise-free formula says, points in the expected box") {
  const Index n = 20001;
  const TensorF t = draw("moons", n);
  // The noise-free points: floor(n/2) on the upper moon, the rest on the lower, t = linspace(0,
  // pi).
  const Index n_out = n / 2, n_in = n - n_out;
  double cx = 0, cy = 0;
  for (Index i = 0; i < n_out; ++i) {
    const double a = pi * double(i) / double(n_out - 1);
    cx += std::cos(a);
    cy += std::sin(a);
  }
  for (Index i = 0; i < n_in; ++i) {
    const double a = pi * double(i) / double(n_in - 1);
    cx += 1 - std::cos(a);
    cy += 1 - std::sin(a) - 0.5;
  }
  const double ex = 2 * cx / double(n) - 1, ey = 2 * cy / double(n) - 0.2;
  // The limit for large n is (0, 0.3); the noise moves the mean by about 0.2 / sqrt(n) = 0.0014.
  CHECK(ex == doctest::Approx(0.0).epsilon(1e-3));
  CHECK(ey == doctest::Approx(0.3).epsilon(1e-3));
  const Mean2 m = mean_of(t);
  CHECK(std::abs(m.x - ex) < 0.008);
  CHECK(std::abs(m.y - ey) < 0.008);
  // Noise-free x in [-1, 2], y in [-0.5, 1], then * 2 + (-1, -0.2); noise 0.1 * 2, 6 sd = 1.2.
  for (Index i = 0; i < n; ++i) {
    CHECK_MESSAGE((t(i, 0) > -3 - 1.2 && t(i, 0) < 3 + 1.2), i);
    CHECK_MESSAGE((t(i, 1) > -1.2 - 1.2 && t(i, 1) < 1.8 + 1.2), i);
  }
  // Distance to the noise-free curves: the upper half of the circle of radius 2 about (-1, -0.2)
  // and the lower half of the one about (1, 0.8). The noise has sd 0.2 per coordinate.
  const auto arc_distance = [](double x, double y, double cx, double cy, bool upper) {
    const bool on_side = upper ? y >= cy : y <= cy;
    if (on_side) return std::abs(std::hypot(x - cx, y - cy) - 2);
    return std::min(std::hypot(x - cx - 2, y - cy), std::hypot(x - cx + 2, y - cy));
  };
  Index near = 0, upper = 0;
  for (Index i = 0; i < n; ++i) {
    const double du = arc_distance(t(i, 0), t(i, 1), -1, -0.2, true);
    const double dl = arc_distance(t(i, 0), t(i, 1), 1, 0.8, false);
    if (std::min(du, dl) < 0.6) ++near;
    if (du < dl) ++upper;
  }
  CHECK(near > 0.99 * n);
  CHECK(std::abs(double(upper) - n / 2.0) < 0.03 * n);
}

TEST_CASE("2spirals: d and -d stacked, so the mean is 0 and rows i and h+i nearly cancel") {
  const Index n = 20000, h = n / 2;
  const TensorF t = draw("2spirals", n);
  const Mean2 m = mean_of(t);
  CHECK(std::abs(m.x) < 0.005);  // noise sd 0.1 / sqrt(n) = 0.0007
  CHECK(std::abs(m.y) < 0.005);
  double sq = 0, max_r = 0;
  for (Index i = 0; i < h; ++i) {
    const double sx = t(i, 0) + t(h + i, 0), sy = t(i, 1) + t(h + i, 1);
    sq += sx * sx + sy * sy;
    max_r = std::max({max_r, radius(t, i), radius(t, h + i)});
  }
  // The sum of two rows is the sum of their noises: sd 0.1 sqrt 2 per coordinate.
  CHECK(std::sqrt(sq / double(2 * h)) == doctest::Approx(0.1 * std::sqrt(2.0)).epsilon(0.05));
  // |d| <= 3 pi + 0.5 sqrt 2, / 3, plus noise.
  CHECK(max_r < (3 * pi + 0.5 * std::sqrt(2.0)) / 3 + 0.7);
  CHECK(max_r > pi - 0.5);
}

TEST_CASE("swissroll: radius t/5 in [0.3 pi, 0.9 pi] plus noise of sd 0.2") {
  const Index n = 20000;
  const TensorF t = draw("swissroll", n);
  double r_sum = 0;
  Index in_band = 0;
  const double lo = 1.5 * pi / 5, hi = 1.5 * pi * 3 / 5;
  for (Index i = 0; i < n; ++i) {
    const double r = radius(t, i);
    r_sum += r;
    CHECK_MESSAGE((r > lo - 1.2 && r < hi + 1.2), i);
    if (r > lo - 0.4 && r < hi + 0.4) ++in_band;
  }
  CHECK(in_band > 0.97 * n);
  // E[t]/5 = 0.6 pi; the noise adds a small positive bias to the radius (about 0.04 / (2 r)).
  CHECK(r_sum / double(n) == doctest::Approx(0.6 * pi).epsilon(0.02));
  // The angle follows t = 5 r (mod 2 pi) up to the noise (about 1 rad in 5 r): the mean of
  // cos(angle - 5 r) is about exp(-1/2) for matching rows and about 0 for rows paired at random.
  double match = 0, mismatch = 0;
  for (Index i = 0; i < n; ++i) {
    const Index j = (i + 1) % n;
    const double a = std::atan2(double(t(i, 1)), double(t(i, 0)));
    match += std::cos(a - 5 * radius(t, i));
    mismatch += std::cos(a - 5 * radius(t, j));
  }
  CHECK(match / double(n) > 0.4);
  CHECK(std::abs(mismatch / double(n)) < 0.1);
}

TEST_CASE("pinwheel: 5 arms of floor(n/5) points, angle 2 pi k/5 + 0.25 exp(f1) from radius 2 f1") {
  const Index n = 25003, per_arm = n / 5;
  const TensorF t = draw("pinwheel", n);
  REQUIRE(t.rows() == 5 * per_arm);
  std::array<Index, 5> arms{};
  Index bad = 0;
  for (Index i = 0; i < t.rows(); ++i) {
    // y = R(-a) f with f = (f1, f2), f2 small: the radius is about 2 f1 and the angle -a.
    const double f1 = radius(t, i) / 2;
    const double angle = std::atan2(double(t(i, 1)), double(t(i, 0)));
    const double base = -angle - 0.25 * std::exp(f1);  // 2 pi k / 5 up to the tangential noise
    const double k = base / (2 * pi / 5);
    const double kr = std::round(k);
    if (std::abs(k - kr) > 0.3) ++bad;
    const long arm = ((static_cast<long>(kr) % 5) + 5) % 5;
    ++arms[static_cast<std::size_t>(arm)];
  }
  CHECK(bad < t.rows() / 50);
  for (std::size_t k = 0; k < 5; ++k) {
    CAPTURE(k);
    CHECK(std::abs(double(arms[k]) - double(per_arm)) < 0.02 * double(per_arm));
  }
  // Radius 2 |f|, with f1 = 1 + 0.3 e: mean about 2.
  double r_sum = 0;
  for (Index i = 0; i < t.rows(); ++i) r_sum += radius(t, i);
  CHECK(r_sum / double(t.rows()) == doctest::Approx(2.0).epsilon(0.03));
}
