// The FFJORD toy datasets (docs/design.md §6).
//
// Every generator computes in double and returns float32 [m, 2]. All randomness comes from the
// Generator passed in, drawn in the order stated above each generator, so a seed gives the same
// points on every machine. "Row by row, x before y" means normals are drawn for point 0 (x, then
// y), then point 1, and so on.
#include "toy_datasets.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <stdexcept>

namespace train2d {

namespace {

constexpr double pi = std::numbers::pi;

// Points built in double: xs[i], ys[i].
struct Points {
  std::vector<double> x, y;
  explicit Points(Index n) : x(static_cast<std::size_t>(n)), y(static_cast<std::size_t>(n)) {}
  Index size() const { return static_cast<Index>(x.size()); }
  void set(Index i, double px, double py) {
    x[static_cast<std::size_t>(i)] = px;
    y[static_cast<std::size_t>(i)] = py;
  }
  // Reorders the points by a random permutation (out[i] = in[perm[i]]).
  void shuffle(Generator& gen) {
    const std::vector<Index> perm = gen.permutation(size());
    std::vector<double> nx(x.size()), ny(y.size());
    for (std::size_t i = 0; i < perm.size(); ++i) {
      nx[i] = x[static_cast<std::size_t>(perm[i])];
      ny[i] = y[static_cast<std::size_t>(perm[i])];
    }
    x.swap(nx);
    y.swap(ny);
  }
  // Adds stddev * e to every coordinate, row by row, x before y.
  void add_noise(Generator& gen, double stddev) {
    for (std::size_t i = 0; i < x.size(); ++i) {
      x[i] += stddev * gen.normal();
      y[i] += stddev * gen.normal();
    }
  }
  TensorF to_tensor() const {
    TensorF out(flowgrad::Shape{size(), 2});
    for (Index i = 0; i < size(); ++i) {
      out(i, 0) = static_cast<float>(x[static_cast<std::size_t>(i)]);
      out(i, 1) = static_cast<float>(y[static_cast<std::size_t>(i)]);
    }
    return out;
  }
};

// numpy.linspace(lo, hi, n, endpoint): n values; with the endpoint the last one is hi.
double linspace_at(double lo, double hi, Index n, Index i, bool endpoint) {
  const Index div = endpoint ? n - 1 : n;
  if (div <= 0) return lo;  // numpy: linspace(lo, hi, 1) == [lo]
  return lo + (hi - lo) * static_cast<double>(i) / static_cast<double>(div);
}

// sklearn.datasets.make_moons(n, noise=0.1), then * 2 + (-1, -0.2).
// Draws: the shuffle permutation, then the noise (row by row, x before y).
TensorF moons(Index n, Generator& gen) {
  const Index n_out = n / 2, n_in = n - n_out;
  Points p(n);
  for (Index i = 0; i < n_out; ++i) {
    const double t = linspace_at(0, pi, n_out, i, true);
    p.set(i, std::cos(t), std::sin(t));
  }
  for (Index i = 0; i < n_in; ++i) {
    const double t = linspace_at(0, pi, n_in, i, true);
    p.set(n_out + i, 1 - std::cos(t), 1 - std::sin(t) - 0.5);
  }
  p.shuffle(gen);
  p.add_noise(gen, 0.1);
  for (Index i = 0; i < n; ++i) {
    auto& px = p.x[static_cast<std::size_t>(i)];
    auto& py = p.y[static_cast<std::size_t>(i)];
    px = px * 2 - 1;
    py = py * 2 - 0.2;
  }
  return p.to_tensor();
}

// Centres 4 * {(1,0), (-1,0), (0,1), (0,-1), (s,s), (s,-s), (-s,s), (-s,-s)}, s = 1/sqrt 2; each
// point is centre + 0.5 e, divided by 1.414.
// Draws, point by point: e_x, e_y, then the centre's index below(8).
TensorF eight_gaussians(Index n, Generator& gen) {
  const double s = 1 / std::numbers::sqrt2;
  const double cx[8] = {1, -1, 0, 0, s, s, -s, -s};
  const double cy[8] = {0, 0, 1, -1, s, -s, s, -s};
  Points p(n);
  for (Index i = 0; i < n; ++i) {
    const double ex = 0.5 * gen.normal();
    const double ey = 0.5 * gen.normal();
    const auto k = static_cast<std::size_t>(gen.below(8));
    p.set(i, (4 * cx[k] + ex) / 1.414, (4 * cy[k] + ey) / 1.414);
  }
  return p.to_tensor();
}

// sklearn.datasets.make_circles(n, factor=0.5, noise=0.08), then * 3.
// Draws: the shuffle permutation, then the noise (row by row, x before y).
TensorF circles(Index n, Generator& gen) {
  const Index n_out = n / 2, n_in = n - n_out;
  Points p(n);
  for (Index i = 0; i < n_out; ++i) {
    const double t = linspace_at(0, 2 * pi, n_out, i, false);
    p.set(i, std::cos(t), std::sin(t));
  }
  for (Index i = 0; i < n_in; ++i) {
    const double t = linspace_at(0, 2 * pi, n_in, i, false);
    p.set(n_out + i, 0.5 * std::cos(t), 0.5 * std::sin(t));
  }
  p.shuffle(gen);
  p.add_noise(gen, 0.08);
  for (Index i = 0; i < n; ++i) {
    p.x[static_cast<std::size_t>(i)] *= 3;
    p.y[static_cast<std::size_t>(i)] *= 3;
  }
  return p.to_tensor();
}

// Radii 1, 0.75, 0.5 with floor(n/4) points each and 0.25 with the rest, angles linspace(0, 2 pi)
// without the endpoint within each ring; * 3, shuffle, + 0.08 e.
// Draws: the shuffle permutation, then the noise (row by row, x before y).
TensorF rings(Index n, Generator& gen) {
  const Index q = n / 4;
  const Index counts[4] = {q, q, q, n - 3 * q};
  const double radii[4] = {1, 0.75, 0.5, 0.25};
  Points p(n);
  Index row = 0;
  for (int r = 0; r < 4; ++r)
    for (Index i = 0; i < counts[r]; ++i, ++row) {
      const double t = linspace_at(0, 2 * pi, counts[r], i, false);
      p.set(row, 3 * radii[r] * std::cos(t), 3 * radii[r] * std::sin(t));
    }
  p.shuffle(gen);
  p.add_noise(gen, 0.08);
  return p.to_tensor();
}

// 5 arms of floor(n/5) points (arm k for rows k*floor(n/5) ...): f = (1 + 0.3 e1, 0.1 e2),
// a = 2 pi k / 5 + 0.25 exp(f1), y = (f1 cos a + f2 sin a, -f1 sin a + f2 cos a); shuffle, * 2.
// Draws: e1, e2 for every point (row by row), then the shuffle permutation.
TensorF pinwheel(Index n, Generator& gen) {
  const Index per_arm = n / 5;
  Points p(5 * per_arm);
  for (Index k = 0; k < 5; ++k)
    for (Index i = 0; i < per_arm; ++i) {
      const double f1 = 1 + 0.3 * gen.normal();
      const double f2 = 0.1 * gen.normal();
      const double a = 2 * pi * static_cast<double>(k) / 5 + 0.25 * std::exp(f1);
      const double c = std::cos(a), s = std::sin(a);
      p.set(k * per_arm + i, f1 * c + f2 * s, -f1 * s + f2 * c);
    }
  p.shuffle(gen);
  for (Index i = 0; i < p.size(); ++i) {
    p.x[static_cast<std::size_t>(i)] *= 2;
    p.y[static_cast<std::size_t>(i)] *= 2;
  }
  return p.to_tensor();
}

// h = floor(n/2): t = sqrt(U) * 3 pi, d = (-t cos t + 0.5 U', t sin t + 0.5 U''); the points are d
// (rows 0..h-1) then -d (rows h..2h-1), divided by 3, plus 0.1 e.
// Draws (as numpy draws whole vectors): U for all h points, then U' for all, then U'' for all, then
// the noise for the 2h rows (row by row, x before y).
TensorF two_spirals(Index n, Generator& gen) {
  const Index h = n / 2;
  std::vector<double> t(static_cast<std::size_t>(h)), u1(t.size()), u2(t.size());
  for (auto& v : t) v = std::sqrt(gen.uniform()) * 3 * pi;
  for (auto& v : u1) v = gen.uniform();
  for (auto& v : u2) v = gen.uniform();
  Points p(2 * h);
  for (Index i = 0; i < h; ++i) {
    const auto j = static_cast<std::size_t>(i);
    const double dx = -t[j] * std::cos(t[j]) + 0.5 * u1[j];
    const double dy = t[j] * std::sin(t[j]) + 0.5 * u2[j];
    p.set(i, dx / 3, dy / 3);
    p.set(h + i, -dx / 3, -dy / 3);
  }
  p.add_noise(gen, 0.1);
  return p.to_tensor();
}

// float32 of a coordinate v (computed in double) in the half-open cell [2k, 2k + 2) of the
// checkerboard: rounding to float must not move a point onto the next cell's lower edge.
float checker_coordinate(double v) {
  const float f = static_cast<float>(v);
  if (std::floor(static_cast<double>(f) / 2) != std::floor(v / 2))
    return std::nextafter(f, -std::numeric_limits<float>::infinity());
  return f;
}

// x1 = 4U - 2; x2 = U' - 2 Bernoulli(1/2) + (floor(x1) mod 2); both * 2. Uniform on the 8 squares
// [2i, 2i + 2) x [2j, 2j + 2) in [-4, 4)^2 with i + j even.
// Draws: U for all points, then U' for all, then the Bernoulli bits (below(2)) for all.
TensorF checkerboard(Index n, Generator& gen) {
  std::vector<double> x1(static_cast<std::size_t>(n)), u(x1.size());
  for (auto& v : x1) v = 4 * gen.uniform() - 2;
  for (auto& v : u) v = gen.uniform();
  TensorF out(flowgrad::Shape{n, 2});
  for (Index i = 0; i < n; ++i) {
    const auto j = static_cast<std::size_t>(i);
    const double bit = static_cast<double>(gen.below(2));
    const double fl = std::floor(x1[j]);
    const double parity = fl - 2 * std::floor(fl / 2);  // Python's floor(x1) % 2, in {0, 1}
    const double x2 = u[j] - 2 * bit + parity;
    out(i, 0) = checker_coordinate(2 * x1[j]);
    out(i, 1) = checker_coordinate(2 * x2);
  }
  return out;
}

// sklearn.datasets.make_swiss_roll(n, noise=1.0), columns 0 and 2, / 5:
// t = 1.5 pi (1 + 2U), x = (t cos t + e1, t sin t + e2) / 5.
// Draws: U for all points, then e1, e2 row by row. (sklearn's unused height column is not drawn.)
TensorF swissroll(Index n, Generator& gen) {
  std::vector<double> t(static_cast<std::size_t>(n));
  for (auto& v : t) v = 1.5 * pi * (1 + 2 * gen.uniform());
  Points p(n);
  for (Index i = 0; i < n; ++i) {
    const double ti = t[static_cast<std::size_t>(i)];
    p.set(i, ti * std::cos(ti), ti * std::sin(ti));
  }
  p.add_noise(gen, 1.0);
  for (Index i = 0; i < n; ++i) {
    p.x[static_cast<std::size_t>(i)] /= 5;
    p.y[static_cast<std::size_t>(i)] /= 5;
  }
  return p.to_tensor();
}

std::string joined_names() {
  std::string s;
  for (const auto& name : toy_dataset_names()) s += (s.empty() ? "" : ", ") + name;
  return s;
}

}  // namespace

const std::vector<std::string>& toy_dataset_names() {
  static const std::vector<std::string> names = {"moons",        "8gaussians", "circles",
                                                 "rings",        "pinwheel",   "2spirals",
                                                 "checkerboard", "swissroll"};
  return names;
}

bool is_toy_dataset(const std::string& name) {
  const auto& names = toy_dataset_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

TensorF sample_toy(const std::string& name, Index n, Generator& gen) {
  if (!is_toy_dataset(name))
    throw std::invalid_argument("unknown dataset '" + name + "' (known: " + joined_names() + ")");
  // pinwheel and 2spirals round n down to a multiple of 5 (of 2): at least one whole group.
  const Index least = name == "pinwheel" ? 5 : name == "2spirals" ? 2 : 1;
  if (n < least)
    throw std::invalid_argument("dataset '" + name + "' needs at least " + std::to_string(least) +
                                " points, asked for " + std::to_string(n));
  if (name == "moons") return moons(n, gen);
  if (name == "8gaussians") return eight_gaussians(n, gen);
  if (name == "circles") return circles(n, gen);
  if (name == "rings") return rings(n, gen);
  if (name == "pinwheel") return pinwheel(n, gen);
  if (name == "2spirals") return two_spirals(n, gen);
  if (name == "checkerboard") return checkerboard(n, gen);
  return swissroll(n, gen);
}

}  // namespace train2d
