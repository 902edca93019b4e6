// gemm() and matmul() against a float64 triple loop: every transpose form, thin and odd shapes that
// reach each of gemm's paths (thin n, thin m, thin k, blocked with edges), padded leading
// dimensions, accumulation, and shape errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "flowgrad/tensor/detail/fused.hpp"
#include "flowgrad/tensor/detail/gemm.hpp"
#include "flowgrad/tensor/ops.hpp"
#include "flowgrad/tensor/random.hpp"

using flowgrad::GemmOptions;
using flowgrad::Generator;
using flowgrad::Index;
using flowgrad::Shape;
using flowgrad::Tensor;

namespace {

// op(X)(i, j) for a row-major X with leading dimension ld.
template <class T>
double op_at(const T* x, Index ld, bool trans, Index i, Index j) {
  return static_cast<double>(trans ? x[j * ld + i] : x[i * ld + j]);
}

template <class T>
double max_abs(const std::vector<T>& v) {
  double r = 0;
  for (T x : v) r = std::max(r, std::abs(static_cast<double>(x)));
  return r;
}

template <class T>
std::vector<T> random_vector(Generator& gen, Index count) {
  const Tensor<T> t = gen.uniform<T>(Shape{count}, T(-1), T(1));
  return std::vector<T>(t.data(), t.data() + count);
}

std::string describe(Index m, Index n, Index k, GemmOptions opt, Index pad) {
  return "m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k) +
         (opt.trans_a ? " A^T" : " A") + (opt.trans_b ? " B^T" : " B") +
         (opt.accumulate ? " accumulate" : "") + " pad=" + std::to_string(pad);
}

// Runs gemm on sub-blocks of larger buffers (leading dimensions = minimal + pad) and checks the
// m x n result against the reference and that the padding of C is left alone.
template <class T>
void check_gemm(Generator& gen, Index m, Index n, Index k, GemmOptions opt, Index pad) {
  CAPTURE(describe(m, n, k, opt, pad));
  const Index a_rows = opt.trans_a ? k : m, a_cols = opt.trans_a ? m : k;
  const Index b_rows = opt.trans_b ? n : k, b_cols = opt.trans_b ? k : n;
  const Index lda = a_cols + pad, ldb = b_cols + pad, ldc = n + pad;
  const std::vector<T> a = random_vector<T>(gen, std::max<Index>(a_rows * lda, 1));
  const std::vector<T> b = random_vector<T>(gen, std::max<Index>(b_rows * ldb, 1));
  std::vector<T> c = random_vector<T>(gen, std::max<Index>(m * ldc, 1));
  if (!opt.accumulate) {
    // C's old values must not be read: poison the block (padding keeps its values).
    for (Index i = 0; i < m; ++i)
      std::fill(c.begin() + i * ldc, c.begin() + i * ldc + n, std::numeric_limits<T>::quiet_NaN());
  }
  const std::vector<T> c0 = c;

  flowgrad::gemm<T>(m, n, k, a.data(), lda, b.data(), ldb, c.data(), ldc, opt);

  const double eps = std::numeric_limits<T>::epsilon();
  const double scale = max_abs(a) * max_abs(b);
  Index bad = 0;
  for (Index i = 0; i < m; ++i) {
    for (Index j = 0; j < n; ++j) {
      double ref = opt.accumulate ? static_cast<double>(c0[i * ldc + j]) : 0.0;
      for (Index p = 0; p < k; ++p)
        ref += op_at(a.data(), lda, opt.trans_a, i, p) * op_at(b.data(), ldb, opt.trans_b, p, j);
      const double got = static_cast<double>(c[i * ldc + j]);
      const double tol = 4 * eps * (static_cast<double>(k) * scale + std::abs(ref)) + 1e-30;
      if (!(std::abs(got - ref) <= tol) && bad++ < 5) {
        INFO("C(" << i << ", " << j << ") = " << got << ", reference " << ref << ", tol " << tol);
        CHECK(false);
      }
    }
    for (Index j = n; j < ldc; ++j) {
      if (c[i * ldc + j] != c0[i * ldc + j] && bad++ < 5) {
        INFO("padding C(" << i << ", " << j << ") was written");
        CHECK(false);
      }
    }
  }
  CHECK(bad == 0);
}

// All four transpose forms, with and without accumulation, minimal and padded strides.
template <class T>
void check_all_forms(Generator& gen, Index m, Index n, Index k) {
  for (const bool ta : {false, true})
    for (const bool tb : {false, true})
      for (const bool acc : {false, true})
        for (const Index pad : {Index(0), Index(3)})
          check_gemm<T>(gen, m, n, k, GemmOptions{ta, tb, acc}, pad);
}

struct Dims {
  Index m, n, k;
};

// The brief's fixed shapes, plus shapes on each side of every path boundary of gemm
// (tensor/detail/gemm_paths.hpp): thin n and thin m (<= 4), thin k (<= 4), and blocked shapes
// crossing MC (144/72), KC (256) and the micro-tile edges (6 rows, 2 batches of columns).
const std::vector<Dims> kFixedShapes = {
    {1, 1, 1},      {3, 5, 7},     {257, 129, 65}, {4096, 2, 64}, {64, 1, 4096},
    {4096, 64, 2},  {4096, 1, 64}, {1, 64, 4096},  {64, 2, 4096}, {2, 64, 4096},
    {5, 5, 5},      {4, 4, 4},     {6, 16, 5},     {7, 17, 1},    {300, 40, 3},
    {150, 33, 300}, {13, 3, 40},   {40, 4, 13},    {3, 40, 13},   {145, 70, 513},
};

const Index kOddSizes[] = {1, 2, 3, 7, 8, 9, 17, 63, 64, 65, 130};

std::vector<Dims> random_shapes(Generator& gen, int count) {
  std::vector<Dims> out;
  const auto pick = [&] { return kOddSizes[gen.below(std::size(kOddSizes))]; };
  for (int i = 0; i < count; ++i) {
    const Index m = pick(), n = pick(), k = pick();
    out.push_back({m, n, k});
  }
  return out;
}

template <class T>
Tensor<T> reference_matmul(const Tensor<T>& a, const Tensor<T>& b, GemmOptions opt) {
  const Index m = opt.trans_a ? a.cols() : a.rows();
  const Index k = opt.trans_a ? a.rows() : a.cols();
  const Index n = opt.trans_b ? b.rows() : b.cols();
  Tensor<T> c(Shape{m, n});
  for (Index i = 0; i < m; ++i)
    for (Index j = 0; j < n; ++j) {
      double s = 0;
      for (Index p = 0; p < k; ++p)
        s += op_at(a.data(), a.cols(), opt.trans_a, i, p) *
             op_at(b.data(), b.cols(), opt.trans_b, p, j);
      c(i, j) = static_cast<T>(s);
    }
  return c;
}

template <class T>
void check_close(const Tensor<T>& got, const Tensor<T>& want, double tol) {
  REQUIRE(got.shape() == want.shape());
  for (Index i = 0; i < got.numel(); ++i)
    REQUIRE(std::abs(static_cast<double>(got[i]) - static_cast<double>(want[i])) <= tol);
}

}  // namespace

TEST_CASE_TEMPLATE("gemm matches a float64 triple loop on fixed shapes", T, float, double) {
  Generator gen(1);
  for (const Dims& d : kFixedShapes) check_all_forms<T>(gen, d.m, d.n, d.k);
}

TEST_CASE_TEMPLATE("gemm matches a float64 triple loop on random odd shapes", T, float, double) {
  Generator gen(2);
  for (const Dims& d : random_shapes(gen, 40)) check_all_forms<T>(gen, d.m, d.n, d.k);
}

TEST_CASE_TEMPLATE("gemm on the thin paths' edges: streamed rows, register blocks, tails", T, float,
                   double) {
  // With A transposed (or B, for a short m), n <= 4 sums along rows of C: m within one register
  // block (8 batches for n = 1, 4 for n = 2, ...) or at most one batch keeps the sums in registers,
  // a wider m streams whole rows of A (for n >= 3 from 16 batches on), P = 8, 4 or 2 k-steps per
  // pass (k here is never a multiple of P). Rows past the last whole batch (m % 8 for float, m % 4
  // for double) take a scalar tail. Without transposes, n = 1 and n = 2 write whole blocks of C as
  // batches, plus single-row tails, with or without prefetching (rows of 1 KB and more in an A
  // that fits in L2 go without).
  Generator gen(4);
  const std::vector<Dims> shapes = {
      {300, 1, 37}, {1, 300, 37}, {131, 2, 45}, {2, 131, 45}, {77, 3, 29},  {3, 77, 29},
      {77, 4, 33},  {4, 77, 33},  {133, 3, 29}, {3, 133, 29}, {133, 4, 33}, {4, 133, 33},
      {11, 1, 50},  {1, 11, 50},  {11, 2, 51},  {36, 2, 19},  {64, 1, 9},   {68, 1, 9},
      {32, 2, 9},   {35, 2, 9},   {37, 2, 70},  {43, 1, 70},  {41, 1, 300}, {21, 2, 301},
  };
  for (const Dims& d : shapes) check_all_forms<T>(gen, d.m, d.n, d.k);
}

TEST_CASE_TEMPLATE("gemm crosses every cache block boundary", T, float, double) {
  // n beyond NC, k beyond two KC blocks, m beyond MC, on either ISA path: the blocks follow the
  // caches (tensor/gemm_blocked.cpp), NC up to 8192 floats and 4096 doubles with a 2 MB B block,
  // KC 64 to 256, MC up to 1020 rows.
  Generator gen(3);
  check_gemm<T>(gen, 7, 8300, 9, GemmOptions{false, true, false}, 1);
  check_gemm<T>(gen, 150, 1030, 520, GemmOptions{true, false, true}, 0);
  check_gemm<T>(gen, 1100, 20, 600, GemmOptions{false, false, false}, 5);
}

TEST_CASE_TEMPLATE("gemm packs B in every layout: one panel read in place, blocks transposed", T,
                   float, double) {
  // n = 8, 16, 32, 64 is one register panel (NR) wide on some ISA for each type (float's narrow
  // tiles of one and two batches, and the wide one), and a row-major B that wide with contiguous
  // rows is read in place rather than packed. A transposed B is packed through 8 x 8 float (4 x 4
  // double) register transposes plus element-wise edges: n and k here leave edges of 1 to 7 on both
  // sides, and k crosses KC.
  Generator gen(5);
  const std::vector<Dims> shapes = {{70, 8, 300},  {70, 16, 300}, {70, 32, 300},
                                    {70, 64, 300}, {13, 64, 65},  {45, 37, 29},
                                    {45, 50, 301}, {20, 71, 9},   {9, 1030, 70}};
  for (const Dims& d : shapes) check_all_forms<T>(gen, d.m, d.n, d.k);
}

TEST_CASE_TEMPLATE("gemm with k = 0 zeroes C or leaves it", T, float, double) {
  std::vector<T> c(6, T(7));
  flowgrad::gemm<T>(2, 3, 0, nullptr, 1, nullptr, 3, c.data(), 3, GemmOptions{});
  for (T x : c) CHECK(x == T(0));
  std::fill(c.begin(), c.end(), T(7));
  flowgrad::gemm<T>(2, 3, 0, nullptr, 1, nullptr, 3, c.data(), 3, GemmOptions{true, true, true});
  for (T x : c) CHECK(x == T(7));
  // m = 0 or n = 0: nothing to do, nothing touched.
  flowgrad::gemm<T>(0, 3, 4, nullptr, 4, nullptr, 3, c.data(), 3, GemmOptions{});
  flowgrad::gemm<T>(2, 0, 4, nullptr, 4, nullptr, 1, c.data(), 1, GemmOptions{});
  for (T x : c) CHECK(x == T(7));
}

TEST_CASE_TEMPLATE("matmul on tensors, every transpose form", T, float, double) {
  Generator gen(4);
  const Dims shapes[] = {{1, 1, 1},    {3, 5, 7},     {4096, 2, 64},
                         {64, 1, 300}, {33, 65, 130}, {130, 64, 2}};
  for (const Dims& d : shapes)
    for (const bool ta : {false, true})
      for (const bool tb : {false, true}) {
        CAPTURE(describe(d.m, d.n, d.k, GemmOptions{ta, tb, false}, 0));
        const Tensor<T> a = gen.normal<T>(ta ? Shape{d.k, d.m} : Shape{d.m, d.k});
        const Tensor<T> b = gen.normal<T>(tb ? Shape{d.n, d.k} : Shape{d.k, d.n});
        const Tensor<T> want = reference_matmul(a, b, GemmOptions{ta, tb, false});
        const double tol = 64 * std::numeric_limits<T>::epsilon() * static_cast<double>(d.k);
        check_close(flowgrad::matmul(a, b, GemmOptions{ta, tb, false}), want, tol);

        // Accumulating form: c = c0 + op(a) op(b).
        Tensor<T> c = gen.normal<T>(Shape{d.m, d.n});
        Tensor<T> want_acc = want;
        for (Index i = 0; i < c.numel(); ++i) want_acc[i] += c[i];
        flowgrad::matmul(a, b, c, GemmOptions{ta, tb, true});
        check_close(c, want_acc, tol + 8 * std::numeric_limits<T>::epsilon());
      }
}

TEST_CASE("matmul names itself and both shapes on an inner-dimension mismatch") {
  const Tensor<float> a(Shape{3, 4});
  const Tensor<float> b(Shape{5, 6});
  std::string message;
  try {
    flowgrad::matmul(a, b);
  } catch (const std::invalid_argument& e) {
    message = e.what();
  }
  CHECK(message.find("matmul") != std::string::npos);
  CHECK(message.find("[3, 4]") != std::string::npos);
  CHECK(message.find("[5, 6]") != std::string::npos);
  CHECK_THROWS_AS(flowgrad::matmul(a, b, GemmOptions{true, false, false}), std::invalid_argument);
  // A^T B with A [4, 3] and B [4, 6] agrees: no throw.
  const Tensor<float> at(Shape{4, 3}), b2(Shape{4, 6});
  CHECK_NOTHROW(flowgrad::matmul(at, b2, GemmOptions{true, false, false}));
}

// linear_forward() applies bias and activation inside gemm, block by block, on every path (thin n,
// thin m, small k in 64-row blocks, blocked with several KC and MC blocks). Each element goes
// through the same arithmetic as matmul() followed by bias_activation(), so the results must
// agree bit for bit.
TEST_CASE_TEMPLATE("linear_forward equals matmul then bias_activation, on every gemm path", T,
                   float, double) {
  using flowgrad::Activation;
  struct Case {
    Index m, n, k;
  };
  Generator gen(31);
  for (const Case s : {Case{1, 7, 5}, Case{3, 64, 64}, Case{300, 64, 1}, Case{300, 64, 3},
                       Case{300, 2, 64}, Case{300, 1, 2}, Case{300, 33, 300}, Case{5, 20, 3},
                       Case{200, 2, 0}, Case{520, 64, 64}, Case{150, 48, 2}}) {
    const Tensor<T> x = gen.normal<T>(Shape{s.m, s.k});
    const Tensor<T> w = gen.normal<T>(Shape{s.n, s.k});
    const Tensor<T> bias = gen.normal<T>(Shape{1, s.n});
    for (const Activation act : {Activation::none, Activation::relu, Activation::leaky_relu,
                                 Activation::tanh, Activation::sigmoid, Activation::softplus}) {
      Tensor<T> want, got;
      flowgrad::matmul(x, w, want, {false, true, false});
      flowgrad::bias_activation(want, bias, act, T(0.03));
      flowgrad::linear_forward(x, w, bias, act, T(0.03), got);
      REQUIRE(got.shape() == want.shape());
      Index bad = 0;
      for (Index i = 0; i < got.numel(); ++i) bad += got[i] != want[i];
      INFO("m ", s.m, " n ", s.n, " k ", s.k, " activation ", static_cast<int>(act));
      CHECK(bad == 0);
    }
  }
  Tensor<T> y;
  const Tensor<T> x(Shape{4, 3}), w(Shape{5, 3}), wrong_bias(Shape{1, 4});
  CHECK_THROWS_WITH_AS(flowgrad::linear_forward(x, w, wrong_bias, Activation::relu, T(0), y),
                       doctest::Contains("bias [1, 4] for weight [5, 3]"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(flowgrad::linear_forward(x, Tensor<T>(Shape{5, 2}), Tensor<T>(Shape{1, 5}),
                                                Activation::relu, T(0), y),
                       doctest::Contains("inner dimensions differ"), std::invalid_argument);
}

// A product with a pre-packed op(B) runs the same kernels on the same values as gemm() packing B
// itself: bit-identical on every path, whether the panels span one cache block or several (k = 300
// is beyond KC), or are not kept (thin shapes), transposed or not, accumulating, with an
// epilogue, and re-packed.
TEST_CASE_TEMPLATE("gemm with a pre-packed B equals gemm packing it, on every path", T, float,
                   double) {
  using flowgrad::Activation;
  struct Case {
    Index m, n, k;
  };
  Generator gen(32);
  flowgrad::PackedB<T> packed;  // re-packed for each case: its buffer is reused
  for (const Case s : {Case{128, 64, 64}, Case{37, 256, 256}, Case{300, 33, 300}, Case{3, 64, 64},
                       Case{300, 64, 1}, Case{300, 2, 64}, Case{8, 17, 5}, Case{70, 8, 90},
                       Case{70, 16, 90}, Case{70, 30, 90}}) {
    for (const bool ta : {false, true})
      for (const bool tb : {false, true})
        for (const bool acc : {false, true}) {
          const Index lda = (ta ? s.m : s.k) + 1, ldb = (tb ? s.k : s.n) + 2, ldc = s.n + 3;
          const Tensor<T> a = gen.normal<T>(Shape{ta ? s.k : s.m, lda});
          const Tensor<T> b = gen.normal<T>(Shape{tb ? s.n : s.k, ldb});
          const Tensor<T> bias = gen.normal<T>(Shape{s.n});
          const Tensor<T> c0 = gen.normal<T>(Shape{s.m, ldc});
          const flowgrad::GemmEpilogue<T> ep{acc ? nullptr : bias.data(), Activation::tanh};
          Tensor<T> want = c0, got = c0;
          flowgrad::gemm(s.m, s.n, s.k, a.data(), lda, b.data(), ldb, want.data(), ldc,
                         {ta, tb, acc}, ep);
          packed.pack(s.k, s.n, b.data(), ldb, tb);
          flowgrad::gemm(s.m, s.n, s.k, a.data(), lda, packed, got.data(), ldc, {ta, tb, acc}, ep);
          Index bad = 0;
          for (Index i = 0; i < got.numel(); ++i) bad += got[i] != want[i];
          INFO("m ", s.m, " n ", s.n, " k ", s.k, " ta ", ta, " tb ", tb, " acc ", acc);
          CHECK(bad == 0);
        }
  }
  const Tensor<T> a(Shape{8, 16}), b(Shape{16, 32});
  Tensor<T> c(Shape{8, 32});
  packed.pack(16, 32, b.data(), 32, false);
  CHECK_THROWS_WITH_AS(
      flowgrad::gemm(8, 32, 16, a.data(), 16, packed, c.data(), 32, {false, true, false}),
      doctest::Contains("B was packed as 16 x 32, the product needs 16 x 32 transposed"),
      std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      flowgrad::gemm(8, 24, 16, a.data(), 16, packed, c.data(), 32, {false, false, false}),
      doctest::Contains("the product needs 16 x 24"), std::invalid_argument);
}
