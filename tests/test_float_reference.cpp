// The float paths of the fused nodes against a double reference: mlp() in float against the chain
// of linear() nodes in double, and affine_columns() in float against itself in double (which
// gradcheck covers), values and every gradient from the tape's backward, on inputs that are exact
// in float so that only the float run's rounding separates the two.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include "flowgrad/autodiff/ops.hpp"
#include "flowgrad/tensor/random.hpp"

using namespace flowgrad;

namespace {

const Activation kActivations[] = {Activation::none, Activation::relu,    Activation::leaky_relu,
                                   Activation::tanh, Activation::sigmoid, Activation::softplus};

// Normal values rounded to float, kept in double: both runs then see the same numbers.
Tensor<double> float_exact_normal(Generator& gen, Shape s, double stddev) {
  return gen.normal<double>(s, 0.0, stddev).cast<float>().cast<double>();
}

// Each element of got within tol * scale of want's, scale being max |want| or, when larger,
// term_scale: the error of a float sum goes with the sizes of its terms, not with its result, which
// may cancel to ~0 (a one-element bias gradient summed over 1000 rows).
void check_normwise(const Tensor<double>& got, const Tensor<double>& want, double tol,
                    const std::string& what, double term_scale = 0) {
  INFO(what);
  REQUIRE(got.shape() == want.shape());
  double scale = term_scale;
  for (Index i = 0; i < want.numel(); ++i) scale = std::max(scale, std::abs(want[i]));
  if (scale == 0) scale = 1;  // a gradient that is zero everywhere (relu output): any error shows
  double worst = 0;
  Index worst_at = 0;
  for (Index i = 0; i < want.numel(); ++i) {
    const double rel = std::abs(got[i] - want[i]) / scale;
    if (!(rel <= worst)) {
      worst = rel;
      worst_at = i;
    }
  }
  INFO("element " << worst_at << ": float " << got[worst_at] << ", double " << want[worst_at]
                  << ", scale " << scale << ", error / scale " << worst);
  CHECK(worst <= tol);
}

// --- mlp ----------------------------------------------------------------------------------------

// {weight 0, bias 0, ...} for widths sizes[0] -> sizes[1] -> ...; weights scaled by 1/sqrt(fan in)
// so that the pre-activations stay of order 1 at width 256 too.
std::vector<Tensor<double>> float_exact_layers(Generator& gen, const std::vector<Index>& sizes) {
  std::vector<Tensor<double>> p;
  for (std::size_t l = 0; l + 1 < sizes.size(); ++l) {
    const double fan_in = static_cast<double>(sizes[l]);
    p.push_back(float_exact_normal(gen, Shape{sizes[l + 1], sizes[l]}, 1.2 / std::sqrt(fan_in)));
    p.push_back(float_exact_normal(gen, Shape{sizes[l + 1]}, 0.5));
  }
  return p;
}

bool has_kink(Activation a) { return a == Activation::relu || a == Activation::leaky_relu; }

double activate(Activation a, double z) {
  switch (a) {
    case Activation::relu:
      return std::max(z, 0.0);
    case Activation::leaky_relu:
      return z > 0 ? z : 0.01 * z;
    case Activation::tanh:
      return std::tanh(z);
    case Activation::sigmoid:
      return 1 / (1 + std::exp(-z));
    case Activation::softplus:
      return z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
    default:
      return z;
  }
}

// True when some pre-activation of row i that goes into relu or leaky_relu is within `margin` of
// the kink. There float and double may take different sides, and the gradient of every layer below
// then differs by a whole term: not a rounding error, so such rows are drawn again.
bool row_near_kink(const Tensor<double>& x, Index i, const std::vector<Tensor<double>>& p,
                   Activation hidden, Activation output, double margin) {
  std::vector<double> h(x.data() + i * x.cols(), x.data() + (i + 1) * x.cols());
  const std::size_t layers = p.size() / 2;
  for (std::size_t l = 0; l < layers; ++l) {
    const Tensor<double>& w = p[2 * l];
    const Tensor<double>& b = p[2 * l + 1];
    const Activation act = l + 1 < layers ? hidden : output;
    std::vector<double> next(static_cast<std::size_t>(w.rows()));
    for (Index o = 0; o < w.rows(); ++o) {
      double z = b[o];
      for (Index j = 0; j < w.cols(); ++j) z += w(o, j) * h[static_cast<std::size_t>(j)];
      if (has_kink(act) && std::abs(z) < margin) return true;
      next[static_cast<std::size_t>(o)] = activate(act, z);
    }
    h = std::move(next);
  }
  return false;
}

struct Outcome {
  Tensor<double> y;
  std::vector<Tensor<double>> grads;  // x, weight 0, bias 0, weight 1, ...
};

// mlp() (fused) or the chain of linear() nodes it replaces, on a tape of T, backward from seed.
template <Scalar T>
Outcome run_mlp(bool fused, const Tensor<double>& x, const std::vector<Tensor<double>>& layers,
                const Tensor<double>& seed, Activation hidden, Activation output) {
  Tape<T> tape;
  const Var<T> xv = tape.constant(x.cast<T>(), true);
  std::vector<Var<T>> p;
  for (const auto& l : layers) p.push_back(tape.constant(l.cast<T>(), true));
  Var<T> y;
  if (fused) {
    y = mlp(xv, std::span<const Var<T>>(p), hidden, output);
  } else {
    y = xv;
    for (std::size_t l = 0; 2 * l < p.size(); ++l)
      y = linear(y, p[2 * l], p[2 * l + 1], 2 * l + 2 < p.size() ? hidden : output);
  }
  tape.backward(y, seed.cast<T>());
  Outcome r{y.value().template cast<double>(), {xv.grad().template cast<double>()}};
  for (const auto& v : p) r.grads.push_back(v.grad().template cast<double>());
  return r;
}

// The parameters' gradients are sums over rows of one term per row. For each parameter, the largest
// over its elements of sqrt(sum over rows of term^2), the size the rounding of such a sum goes
// with, estimated from the first 64 rows (each run alone, in double) scaled up to the batch.
std::vector<double> parameter_term_sizes(const Tensor<double>& x,
                                         const std::vector<Tensor<double>>& layers,
                                         const Tensor<double>& seed, Activation hidden,
                                         Activation output) {
  const Index rows = std::min<Index>(x.rows(), 64);
  std::vector<Tensor<double>> squares;
  for (const auto& l : layers) squares.emplace_back(l.shape(), 0.0);
  for (Index i = 0; i < rows; ++i) {
    Tensor<double> xi(Shape{1, x.cols()}), si(Shape{1, seed.cols()});
    for (Index j = 0; j < x.cols(); ++j) xi[j] = x(i, j);
    for (Index j = 0; j < seed.cols(); ++j) si[j] = seed(i, j);
    const Outcome r = run_mlp<double>(false, xi, layers, si, hidden, output);
    for (std::size_t p = 0; p < layers.size(); ++p)
      for (Index e = 0; e < squares[p].numel(); ++e)
        squares[p][e] += r.grads[p + 1][e] * r.grads[p + 1][e];
  }
  std::vector<double> out;
  for (const auto& sq : squares) {
    double m = 0;
    for (Index e = 0; e < sq.numel(); ++e) m = std::max(m, sq[e]);
    out.push_back(std::sqrt(m * static_cast<double>(x.rows()) / static_cast<double>(rows)));
  }
  return out;
}

// Tolerances, relative to each result's scale (see check_normwise). Inputs and parameters are
// exact in float, so only the float run's rounding (u = 2^-24 = 6e-8) separates the runs. In the
// values: sums of up to 256 products per layer, of order sqrt(k) u of their terms for k terms of
// mixed signs (k u = 1.5e-5 at worst), and a few ulps per float activation. In the gradients, also
// the sums over up to 1000 rows (blocks of at most 128 added pairwise), again of order sqrt(rows) u
// of the terms, and the derivatives taken from the activation's rounded output: 1 - y^2 for tanh
// and y (1 - y) for sigmoid lose about u / act' near saturation, 1e-5 of a derivative of 1e-2.
// Observed worst: 4.3e-6 for values, 2.4e-5 for gradients (the latter in the narrow nets, where
// one saturated unit carries the whole gradient). A wrong term is far larger. Tried: dropping one
// row's term from the weight and bias sums (by zeroing the last row of the float run's seed alone)
// fails 357 of the 384 cases at 129 and 1000 rows on the parameter gradients alone, the rest being
// rows whose terms happen to be small. By estimate: tanh' taken as 1 - y, or leaky_relu's slope
// as 0.02, moves gradients by a good fraction of their size; a pairwise sum that lost one block's
// partials at 1000 rows is off by about 1/8.
constexpr double kValueTol = 2e-5;
constexpr double kGradTol = 5e-5;

void compare_mlp(Generator& gen, const std::vector<Index>& sizes, Index batch, Activation hidden,
                 Activation output) {
  std::string widths;
  for (const Index w : sizes) {
    widths += std::to_string(w);
    widths += ' ';
  }
  INFO("widths " << widths << "batch " << batch << ", hidden " << static_cast<int>(hidden)
                 << ", output " << static_cast<int>(output));
  const std::vector<Tensor<double>> layers = float_exact_layers(gen, sizes);
  Tensor<double> x = float_exact_normal(gen, Shape{batch, sizes[0]}, 1.0);
  if (has_kink(hidden) || has_kink(output)) {
    // Float's pre-activations are off by ~1e-6 (see the tolerances); 1e-4 leaves a wide margin and
    // redraws about 1 row in 20 of a 256-wide net.
    for (Index i = 0; i < batch; ++i) {
      int tries = 0;
      while (row_near_kink(x, i, layers, hidden, output, 1e-4)) {
        REQUIRE(++tries < 100);
        const Tensor<double> row = float_exact_normal(gen, Shape{1, sizes[0]}, 1.0);
        for (Index j = 0; j < sizes[0]; ++j) x(i, j) = row[j];
      }
    }
  }
  const Tensor<double> seed = float_exact_normal(gen, Shape{batch, sizes.back()}, 1.0);
  const Outcome want = run_mlp<double>(false, x, layers, seed, hidden, output);
  const Outcome got = run_mlp<float>(true, x, layers, seed, hidden, output);
  check_normwise(got.y, want.y, kValueTol, "value");
  check_normwise(got.grads[0], want.grads[0], kGradTol, "gradient of x");
  const std::vector<double> terms = parameter_term_sizes(x, layers, seed, hidden, output);
  for (std::size_t g = 1; g < want.grads.size(); ++g) {
    std::string what =
        g % 2 == 1 ? "gradient of the weight of layer " : "gradient of the bias of layer ";
    what += std::to_string((g - 1) / 2);
    check_normwise(got.grads[g], want.grads[g], kGradTol, what, terms[g - 1]);
  }
}

// 1 row, 7 (less than a SIMD batch of rows), 129 (two blocks, the second of 1 row: the pairwise
// sum of partials runs) and 1000 (eight blocks, the tree's full depth).
const Index kBatches[] = {1, 7, 129, 1000};

}  // namespace

TEST_CASE("float mlp against the double chain of linear nodes: narrow nets, every activation") {
  Generator gen(81);
  // 1 and 2 columns in and out, as a 2-D coupling's nets have, with hidden layers as narrow.
  const std::vector<std::vector<Index>> one_layer = {{1, 1}, {2, 2}, {2, 1}};
  const std::vector<std::vector<Index>> deeper = {{1, 2, 1}, {2, 2, 2}, {1, 2, 2, 2}, {2, 1, 2, 1}};
  for (const Index batch : kBatches) {
    for (const auto& sizes : one_layer)
      for (const Activation output : kActivations)
        compare_mlp(gen, sizes, batch, Activation::none, output);
    for (const auto& sizes : deeper)
      for (const Activation hidden : kActivations)
        for (const Activation output : kActivations) compare_mlp(gen, sizes, batch, hidden, output);
  }
}

TEST_CASE("float mlp against the double chain of linear nodes: 64 wide") {
  Generator gen(82);
  // Each hidden activation once per net and batch, paired with a different output each time.
  const std::vector<std::vector<Index>> nets = {{64, 2}, {1, 64, 2}, {2, 64, 64, 2}};
  int turn = 0;
  for (const auto& sizes : nets)
    for (const Index batch : kBatches) {
      for (int h = 0; h < 6; ++h)
        compare_mlp(gen, sizes, batch, kActivations[h], kActivations[(h + turn) % 6]);
      ++turn;
    }
}

// Narrower layers' weight gradients are summed per block of rows and the blocks added pairwise; a
// 256 x 256 layer's, over more than one block, by one product over the batch after the blocks (see
// kPartialBytes in ops_mlp.cpp): both ways are compared here.
TEST_CASE("float mlp against the double chain of linear nodes: 256 wide, 2 layers") {
  Generator gen(83);
  int turn = 3;
  for (const Index batch : kBatches) {
    for (int h = 0; h < 6; ++h)
      compare_mlp(gen, {2, 256, 1}, batch, kActivations[h], kActivations[(h + turn) % 6]);
    ++turn;
  }
}

TEST_CASE("float mlp against the double chain of linear nodes: 256 wide, 3 layers") {
  Generator gen(85);
  int turn = 1;
  for (const Index batch : kBatches) {
    // At 1000 rows every other hidden activation, to keep the case short (each costs ~0.1 s); the
    // 2-layer and 64-wide cases take all six at 1000 rows.
    const int step = batch == 1000 ? 2 : 1;
    for (int h = 0; h < 6; h += step)
      compare_mlp(gen, {1, 256, 256, 2}, batch, kActivations[h], kActivations[(h + turn) % 6]);
    ++turn;
  }
}

// --- affine_columns
// -------------------------------------------------------------------------------

namespace {

template <Scalar T>
Outcome run_affine_columns(const Tensor<double>& x, const Tensor<double>& s,
                           const Tensor<double>& t, const Tensor<double>& seed,
                           const std::vector<Index>& idx, bool inverse) {
  Tape<T> tape;
  const Var<T> xv = tape.constant(x.cast<T>(), true);
  const Var<T> sv = tape.constant(s.cast<T>(), true);
  const Var<T> tv = tape.constant(t.cast<T>(), true);
  const Var<T> y = affine_columns(xv, sv, tv, idx, inverse);
  tape.backward(y, seed.cast<T>());
  return {y.value().template cast<double>(),
          {xv.grad().template cast<double>(), sv.grad().template cast<double>(),
           tv.grad().template cast<double>()}};
}

}  // namespace

TEST_CASE("float affine_columns against double, forward and inverse, values and gradients") {
  // The double op is gradchecked in test_autodiff_ops.cpp. Here no element sums more than one
  // term: each is x, t, the seed and exp(+-s) combined by at most three roundings, plus float exp's
  // error of a few ulps; y - t (the forward's s-gradient works from y) adds an error of u |y|,
  // which the scale (max |double|) covers as |t| and |x e^s| are alike here. 3e-6 is ~50 u; the
  // worst seen is 6e-7, in that s-gradient. A wrong term is O(1): the inverse's s-gradient with + g
  // x for - g x, the x-gradient without its e^s, the t-gradient of the inverse without e^-s, or a
  // transformed column's x-gradient passed through as if untransformed.
  constexpr double tol = 3e-6;
  Generator gen(84);
  struct Case {
    Index cols;
    std::vector<Index> idx;
  };
  const std::vector<Case> cases = {{2, {1}}, {2, {0}}, {5, {3, 0}}, {3, {0, 1, 2}}};
  for (const Case& c : cases)
    for (const Index rows : kBatches)
      for (const bool inverse : {false, true}) {
        const Index k = static_cast<Index>(c.idx.size());
        INFO("columns " << c.cols << ", transformed " << k << " (first " << c.idx[0] << "), rows "
                        << rows);
        CAPTURE(inverse);
        const Tensor<double> x = float_exact_normal(gen, Shape{rows, c.cols}, 1.0);
        const Tensor<double> s = float_exact_normal(gen, Shape{rows, k}, 1.0);
        const Tensor<double> t = float_exact_normal(gen, Shape{rows, k}, 1.0);
        const Tensor<double> seed = float_exact_normal(gen, Shape{rows, c.cols}, 1.0);
        const Outcome want = run_affine_columns<double>(x, s, t, seed, c.idx, inverse);
        const Outcome got = run_affine_columns<float>(x, s, t, seed, c.idx, inverse);
        check_normwise(got.y, want.y, tol, "value");
        check_normwise(got.grads[0], want.grads[0], tol, "gradient of x");
        check_normwise(got.grads[1], want.grads[1], tol, "gradient of s");
        check_normwise(got.grads[2], want.grads[2], tol, "gradient of t");
      }
}
