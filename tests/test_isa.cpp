// The ISA dispatch (flowgrad/tensor/isa.hpp): choosing and forcing a path, and that the AVX2 and
// AVX-512 paths agree with each other to float rounding and with float64, while each stays
// bit-identical across thread counts. On a CPU without AVX-512 the comparisons between paths are
// skipped, saying so; scripts/test.sh also runs the kernel suites a second time under
// FLOWGRAD_ISA=avx2 where the CPU has both.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "flowgrad/autodiff/ops.hpp"
#include "flowgrad/autodiff/optim.hpp"
#include "flowgrad/flows/models.hpp"
#include "flowgrad/tensor/detail/adam_update.hpp"
#include "flowgrad/tensor/detail/gemm.hpp"
#include "flowgrad/tensor/isa.hpp"
#include "flowgrad/tensor/ops.hpp"
#include "flowgrad/tensor/random.hpp"
#include "flowgrad/tensor/threads.hpp"

using namespace flowgrad;

namespace {

// Runs f on `isa` (and `threads`), then puts back the path and thread count found.
template <class F>
auto on(Isa isa, int threads, F&& f) {
  const Isa before = active_isa();
  const int threads_before = num_threads();
  set_isa(isa);
  set_num_threads(threads);
  auto result = f();
  set_isa(before);
  set_num_threads(threads_before);
  return result;
}

bool both_paths() {
  if (isa_available(Isa::avx2) && isa_available(Isa::avx512)) return true;
  MESSAGE(
      "only one path here (a CPU without AVX-512 F/BW/CD/DQ/VL, or a FLOWGRAD_NATIVE build): "
      "the paths are not compared");
  return false;
}

std::vector<Isa> available_paths() {
  std::vector<Isa> paths;
  for (Isa isa : {Isa::avx2, Isa::avx512})
    if (isa_available(isa)) paths.push_back(isa);
  return paths;
}

// C = act(op(A) op(B) + bias), from the public gemm(), and the float64 reference with
// sum_p |a_ip b_pj| + |bias_j|, the scale of its rounding error.
struct Product {
  Index m, n, k;
  bool ta, tb;
  Activation act;
};

std::vector<float> gemm_float(const Product& p, const Tensor<float>& a, const Tensor<float>& b,
                              const Tensor<float>& bias) {
  std::vector<float> c(static_cast<std::size_t>(p.m * p.n));
  gemm(p.m, p.n, p.k, a.data(), a.cols(), b.data(), b.cols(), c.data(), p.n, {p.ta, p.tb, false},
       GemmEpilogue<float>{bias.data(), p.act, 0.01f});
  return c;
}

void check_gemm_paths(const Product& p, Generator& gen) {
  const Tensor<float> a = gen.uniform<float>(p.ta ? Shape{p.k, p.m} : Shape{p.m, p.k}, -1.f, 1.f);
  const Tensor<float> b = gen.uniform<float>(p.tb ? Shape{p.n, p.k} : Shape{p.k, p.n}, -1.f, 1.f);
  const Tensor<float> bias = gen.uniform<float>(Shape{p.n}, -1.f, 1.f);
  const auto c2 = on(Isa::avx2, 1, [&] { return gemm_float(p, a, b, bias); });
  const auto c5 = on(Isa::avx512, 1, [&] { return gemm_float(p, a, b, bias); });
  int bad = 0;
  for (Index i = 0; i < p.m; ++i)
    for (Index j = 0; j < p.n; ++j) {
      double z = bias[j], scale = std::abs(bias[j]);
      for (Index q = 0; q < p.k; ++q) {
        const double x = p.ta ? a(q, i) : a(i, q), y = p.tb ? b(j, q) : b(q, j);
        z += x * y;
        scale += std::abs(x * y);
      }
      const double ref = p.act == Activation::relu         ? std::max(z, 0.0)
                         : p.act == Activation::leaky_relu ? (z > 0 ? z : 0.01 * z)
                         : p.act == Activation::tanh       ? std::tanh(z)
                                                           : z;
      // Each path is within a float rounding per addition of the double result (the activations
      // are 1-Lipschitz; tanh adds a few ulps of its own), so the two are within twice that of
      // each other.
      const double tol = 2 * (static_cast<double>(p.k) + 2) * 6e-8 * scale + 1e-6;
      const auto e = static_cast<std::size_t>(i * p.n + j);
      if (std::abs(c2[e] - ref) > tol || std::abs(c5[e] - ref) > tol ||
          std::abs(static_cast<double>(c2[e]) - c5[e]) > 2 * tol)
        ++bad;
    }
  CHECK_MESSAGE(bad == 0, bad << " elements off for m " << p.m << " n " << p.n << " k " << p.k
                              << (p.ta ? " A^T" : "") << (p.tb ? " B^T" : ""));
}

// A few steps of the benchmark protocol's RealNVP from one initialisation: the losses.
std::vector<double> realnvp_losses(Index hidden, Index batch, int steps) {
  Generator gen(5);
  RealNVPConfig cfg;
  cfg.dim = 2;
  cfg.coupling = {hidden, 2, Activation::relu};
  DensityFlow<float> model(make_realnvp<float>(cfg, gen));
  const TensorF x = gen.normal<float>(Shape{batch, 2});
  Adam<float> adam(model.parameters(), {.lr = 1e-3});
  Tape<float> tape;
  std::vector<double> losses;
  for (int s = 0; s < steps; ++s) {
    tape.reset();
    adam.zero_grad();
    const auto loss = -mean(model.log_prob(tape.constant(x)));
    tape.backward(loss);
    adam.step();
    losses.push_back(loss.item());
  }
  return losses;
}

// The MLP node's output and every gradient, concatenated.
std::vector<float> mlp_values_and_grads(Index batch, Index hidden) {
  Generator gen(19);
  Tape<float> t;
  std::vector<Var<float>> p;
  const std::vector<Index> sizes = {3, hidden, hidden, 2};
  for (std::size_t l = 0; l + 1 < sizes.size(); ++l) {
    p.push_back(t.constant(gen.normal<float>(Shape{sizes[l + 1], sizes[l]}, 0.f, 0.4f), true));
    p.push_back(t.constant(gen.normal<float>(Shape{sizes[l + 1]}), true));
  }
  const auto x = t.constant(gen.normal<float>(Shape{batch, 3}), true);
  const auto y = mlp(x, std::span<const Var<float>>(p), Activation::relu, Activation::tanh);
  t.backward(y, gen.normal<float>(Shape{batch, 2}));
  std::vector<float> all(y.value().data(), y.value().data() + y.value().numel());
  auto append = [&](const TensorF& g) { all.insert(all.end(), g.data(), g.data() + g.numel()); };
  append(x.grad());
  for (const auto& v : p) append(v.grad());
  return all;
}

}  // namespace

TEST_CASE("the active ISA is available, and set_isa() switches or refuses") {
  const Isa start = active_isa();
  MESSAGE("kernels run " << std::string(to_string(start)));
  CHECK(isa_available(start));
  // Unless FLOWGRAD_ISA asks otherwise, the widest path.
  if (!std::getenv("FLOWGRAD_ISA"))
    CHECK(start == (isa_available(Isa::avx512) ? Isa::avx512 : Isa::avx2));
  for (Isa isa : {Isa::avx2, Isa::avx512}) {
    CHECK(isa_from_string(to_string(isa)) == isa);
    if (isa_available(isa)) {
      set_isa(isa);
      CHECK(active_isa() == isa);
    } else {
      CHECK_THROWS_AS(set_isa(isa), std::invalid_argument);
      CHECK(active_isa() != isa);
    }
  }
  set_isa(start);
  CHECK_THROWS_AS(isa_from_string("avx-512"), std::invalid_argument);
}

TEST_CASE("FLOWGRAD_ISA picks the path the process starts on") {
  const char* env = std::getenv("FLOWGRAD_ISA");
  if (!env || !isa_available(isa_from_string(env))) {
    MESSAGE("FLOWGRAD_ISA is unset or names a path this CPU lacks: nothing to check");
    return;
  }
  // The first case may have switched paths and back; the start is what it found first.
  CHECK(std::string(to_string(active_isa())) == env);
}

TEST_CASE("gemm: the AVX2 and AVX-512 paths agree with each other and with float64") {
  if (!both_paths()) return;
  Generator gen(3);
  // Register-tile and cache-block edges of both paths (MR 6, NR 16 and 64, KC 64 and 256 on a
  // 32 KB L1), every transpose form, the epilogue in registers and in a pass; thin shapes too.
  for (const Product p : {Product{37, 53, 300, false, false, Activation::relu},
                          Product{130, 70, 129, true, false, Activation::none},
                          Product{61, 257, 64, false, true, Activation::tanh},
                          Product{13, 33, 513, true, true, Activation::relu},
                          Product{300, 2, 700, false, false, Activation::none},
                          Product{2, 300, 64, true, false, Activation::none},
                          Product{500, 77, 3, false, false, Activation::leaky_relu}})
    check_gemm_paths(p, gen);
}

TEST_CASE("a B packed on one path still multiplies correctly after a switch") {
  if (!both_paths()) return;
  Generator gen(4);
  const Index m = 50, n = 70, k = 300;
  const TensorF a = gen.normal<float>(Shape{m, k}), w = gen.normal<float>(Shape{n, k});
  auto product = [&](Isa pack_on, Isa run_on) {
    PackedB<float> packed;
    on(pack_on, 1, [&] {
      packed.pack(k, n, w.data(), k, true);
      return 0;
    });
    std::vector<float> c(static_cast<std::size_t>(m * n));
    on(run_on, 1, [&] {
      gemm(m, n, k, a.data(), k, packed, c.data(), n, {false, true, false});
      return 0;
    });
    return c;
  };
  // Panels of the other ISA's layout are not used: the product equals the unpacked one.
  const auto plain = on(Isa::avx2, 1, [&] {
    std::vector<float> c(static_cast<std::size_t>(m * n));
    gemm(m, n, k, a.data(), k, w.data(), k, c.data(), n, {false, true, false});
    return c;
  });
  CHECK(product(Isa::avx512, Isa::avx2) == plain);
  CHECK(product(Isa::avx2, Isa::avx2) == plain);
}

TEST_CASE("elementwise ops, reductions and Adam agree between the paths") {
  if (!both_paths()) return;
  Generator gen(6);
  const TensorF x = gen.normal<float>(Shape{333, 37});
  auto close = [](const TensorF& p, const TensorF& q, double rel) {
    for (Index i = 0; i < p.numel(); ++i)
      if (std::abs(p[i] - q[i]) > rel * (std::abs(p[i]) + 1e-6)) return false;
    return p.numel() == q.numel();
  };
  for (Unary f : {Unary::exp, Unary::tanh, Unary::sigmoid, Unary::softplus, Unary::sin, Unary::cos,
                  Unary::relu}) {
    const auto y2 = on(Isa::avx2, 1, [&] { return unary(f, x); });
    const auto y5 = on(Isa::avx512, 1, [&] { return unary(f, x); });
    CHECK_MESSAGE(close(y2, y5, 1e-6), to_string(f));
  }
  const auto s2 = on(Isa::avx2, 1, [&] { return sum(x, 0); });
  const auto s5 = on(Isa::avx512, 1, [&] { return sum(x, 0); });
  CHECK(close(s2, s5, 1e-5));
  auto lse = [&] {
    TensorF out;
    logsumexp(x, 1, out);
    return out;
  };
  const auto l2 = on(Isa::avx2, 1, lse);
  const auto l5 = on(Isa::avx512, 1, lse);
  CHECK(close(l2, l5, 1e-6));
  const TensorF m0 = gen.normal<float>(x.shape()), v0 = unary(Unary::square, x);
  auto adam = [&] {
    TensorF w = x, m = m0, v = v0;
    adam_update(w, x, m, v, {0.9, 0.999, 1e-8, 0.0, 1e-3, 1.0});
    return w;
  };
  CHECK(close(on(Isa::avx2, 1, adam), on(Isa::avx512, 1, adam), 1e-6));
}

TEST_CASE("the fused MLP node and a RealNVP training step agree between the paths") {
  if (!both_paths()) return;
  // Blocks of rows through every layer (1000 rows), and layer by layer over the batch (48).
  for (const auto& [batch, hidden] : {std::pair<Index, Index>{1000, 64}, {48, 300}}) {
    CAPTURE(batch);
    const auto m2 = on(Isa::avx2, 1, [&] { return mlp_values_and_grads(batch, hidden); });
    const auto m5 = on(Isa::avx512, 1, [&] { return mlp_values_and_grads(batch, hidden); });
    REQUIRE(m2.size() == m5.size());
    double worst = 0;
    for (std::size_t i = 0; i < m2.size(); ++i)
      worst = std::max(worst, std::abs(static_cast<double>(m2[i]) - m5[i]) / (std::abs(m2[i]) + 1));
    CHECK(worst < 1e-4);
  }
  const auto loss2 = on(Isa::avx2, 1, [] { return realnvp_losses(64, 512, 3); });
  const auto loss5 = on(Isa::avx512, 1, [] { return realnvp_losses(64, 512, 3); });
  for (std::size_t s = 0; s < loss2.size(); ++s)
    CHECK(loss2[s] == doctest::Approx(loss5[s]).epsilon(1e-5));
}

// A spline node's values, log-derivatives and gradients (of sum(w y) + sum(log dy/dx), with
// respect to x and the parameters), forward or inverse, 8 bins on [-3, 3], some points in the
// tails.
template <class T>
std::vector<double> spline_values_and_grads(bool inverse) {
  constexpr Index rows = 301, m = 3, K = 8;
  Generator gen(11);
  const Tensor<T> x = gen.normal<T>(Shape{rows, m}, T(0), T(2));
  const Tensor<T> p = gen.normal<T>(Shape{rows, m * (3 * K - 1)});
  const Tensor<T> w = gen.normal<T>(Shape{rows, m});
  Tape<T> t;
  const Var<T> xv = t.constant(x, true), pv = t.constant(p, true);
  const auto r = rational_quadratic_spline(xv, pv, K, T(3), inverse);
  t.backward(add(sum(mul(r.out, t.constant(w))), sum(r.log_det)));
  std::vector<double> out;
  for (const Tensor<T>* v : {&r.out.value(), &r.log_det.value(), &xv.grad(), &pv.grad()})
    for (Index i = 0; i < v->numel(); ++i) out.push_back(double((*v)[i]));
  return out;
}

TEST_CASE("the spline kernel agrees between the paths, and is bit-identical at 1 and 2 threads") {
  for (bool inverse : {false, true}) {
    CAPTURE(inverse);
    for (Isa isa : available_paths()) {
      CAPTURE(to_string(isa));
      CHECK(on(isa, 1, [&] { return spline_values_and_grads<double>(inverse); }) ==
            on(isa, 2, [&] { return spline_values_and_grads<double>(inverse); }));
    }
    if (!both_paths()) continue;
    // The work is in double on both paths: only the SIMD maths' rounding differs.
    const auto d2 = on(Isa::avx2, 1, [&] { return spline_values_and_grads<double>(inverse); });
    const auto d5 = on(Isa::avx512, 1, [&] { return spline_values_and_grads<double>(inverse); });
    const auto f2 = on(Isa::avx2, 1, [&] { return spline_values_and_grads<float>(inverse); });
    const auto f5 = on(Isa::avx512, 1, [&] { return spline_values_and_grads<float>(inverse); });
    REQUIRE(d2.size() == d5.size());
    REQUIRE(f2.size() == d2.size());
    double worst_double = 0, worst_float = 0;
    for (std::size_t i = 0; i < d2.size(); ++i) {
      worst_double = std::max(worst_double, std::abs(d2[i] - d5[i]) / (std::abs(d2[i]) + 1));
      worst_float = std::max(worst_float, std::abs(f2[i] - f5[i]) / (std::abs(f2[i]) + 1));
    }
    CHECK(worst_double < 1e-12);
    CHECK(worst_float < 1e-6);
  }
}

TEST_CASE("each path is bit-identical at 1 and 2 threads") {
  Generator gen(8);
  const TensorF a = gen.normal<float>(Shape{301, 203}), b = gen.normal<float>(Shape{203, 157});
  for (Isa isa : available_paths()) {
    CAPTURE(to_string(isa));
    auto product = [&] { return matmul(a, b); };
    const TensorF c1 = on(isa, 1, product), c2 = on(isa, 2, product);
    CHECK(std::equal(c1.data(), c1.data() + c1.numel(), c2.data()));
    auto node = [] { return mlp_values_and_grads(1000, 160); };
    CHECK(on(isa, 1, node) == on(isa, 2, node));
    auto by_layer = [] { return mlp_values_and_grads(48, 300); };
    CHECK(on(isa, 1, by_layer) == on(isa, 2, by_layer));
  }
}
