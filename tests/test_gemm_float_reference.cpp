// Float gemm() -- plain and with a pre-packed B, every transpose form, accumulating or not, with
// and without the bias + activation epilogue -- against a double triple loop on the same inputs,
// with a per-element bound on float rounding rather than a comparison of float code with itself.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "flowgrad/tensor/detail/gemm.hpp"
#include "flowgrad/tensor/random.hpp"

using flowgrad::Activation;
using flowgrad::GemmEpilogue;
using flowgrad::GemmOptions;
using flowgrad::Generator;
using flowgrad::Index;
using flowgrad::Shape;
using flowgrad::Tensor;

namespace {

struct Epilogue {
  bool bias;
  Activation act;
};

const Epilogue kEpilogues[] = {{false, Activation::none},
                               {true, Activation::none},
                               {true, Activation::relu},
                               {true, Activation::leaky_relu},
                               {true, Activation::tanh}};

// Not the default 0.01: a kernel that ignored the epilogue's slope would show.
constexpr double kSlope = 0.03;

double activate(Activation act, double z) {
  switch (act) {
    case Activation::relu:
      return z > 0 ? z : 0;
    case Activation::leaky_relu:
      return z > 0 ? z : kSlope * z;
    case Activation::tanh:
      return std::tanh(z);
    default:
      return z;
  }
}

std::vector<float> uniform_floats(Generator& gen, Index count) {
  const Tensor<float> t = gen.uniform<float>(Shape{std::max<Index>(count, 1)}, -1.0f, 1.0f);
  return std::vector<float>(t.data(), t.data() + t.numel());
}

// The logical op(A) [m x k] and op(B) [k x n], stored row-major as given or transposed with padded
// leading dimensions, as gemm reads them.
std::vector<float> store(const std::vector<float>& x, Index rows, Index cols, bool trans, Index pad,
                         Index* ld) {
  const Index r = trans ? cols : rows, c = trans ? rows : cols;
  *ld = c + pad;
  std::vector<float> out(static_cast<std::size_t>(std::max<Index>(r * *ld, 1)), 0.0f);
  for (Index i = 0; i < rows; ++i)
    for (Index j = 0; j < cols; ++j)
      out[static_cast<std::size_t>(trans ? j * *ld + i : i * *ld + j)] =
          x[static_cast<std::size_t>(i * cols + j)];
  return out;
}

// Runs every form on one shape. The double reference op(A) op(B) and sum_p |a_ip b_pj| do not
// depend on the form, so they are computed once.
void check_shape(Generator& gen, Index m, Index n, Index k) {
  const std::vector<float> a = uniform_floats(gen, m * k), b = uniform_floats(gen, k * n);
  const std::vector<float> c0 = uniform_floats(gen, m * n), bias = uniform_floats(gen, n);
  std::vector<double> prod(static_cast<std::size_t>(m * n)), mag(prod.size());
  for (Index i = 0; i < m; ++i)
    for (Index j = 0; j < n; ++j) {
      double s = 0, s_abs = 0;
      for (Index p = 0; p < k; ++p) {
        const double t = static_cast<double>(a[static_cast<std::size_t>(i * k + p)]) *
                         static_cast<double>(b[static_cast<std::size_t>(p * n + j)]);
        s += t;
        s_abs += std::abs(t);
      }
      prod[static_cast<std::size_t>(i * n + j)] = s;
      mag[static_cast<std::size_t>(i * n + j)] = s_abs;
    }

  // Whatever order the kernels add the k products, the c0 and the bias in (FMA or not, blocked or
  // not), the float sum is within gamma_{k+2} (sum |terms|) of the exact one, gamma_j ~ j u with
  // u = 2^-24; eps = 2u doubles that. The activations are 1-Lipschitz, so that error carries
  // through them, and tanh's own rounding adds a few ulps of its result. At 300x257x129 this is
  // about 1.6e-5 of sum |terms| (~32 on average here): 5e-4 absolute, while leaving out one product
  // (|a b| ~ 0.25), reading the bias of the next column, or a slope of 0.01 for 0.03 moves an
  // element by ~1e-1.
  const double eps = std::numeric_limits<float>::epsilon();
  flowgrad::PackedB<float> packed;
  for (const bool ta : {false, true})
    for (const bool tb : {false, true}) {
      Index lda = 0, ldb = 0;
      const std::vector<float> sa = store(a, m, k, ta, ta ? 2 : 1, &lda);
      const std::vector<float> sb = store(b, k, n, tb, tb ? 1 : 3, &ldb);
      packed.pack(k, n, sb.data(), ldb, tb);
      for (const bool acc : {false, true})
        for (const Epilogue& e : kEpilogues)
          for (const bool use_packed : {false, true}) {
            const std::string what =
                "m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k) +
                (ta ? " A^T" : " A") + (tb ? " B^T" : " B") + (acc ? " accumulate" : "") +
                (e.bias ? " bias" : "") + " act " + std::to_string(static_cast<int>(e.act)) +
                (use_packed ? " packed B" : "");
            CAPTURE(what);
            std::vector<float> c = c0;
            const GemmOptions opt{ta, tb, acc};
            const GemmEpilogue<float> ep{e.bias ? bias.data() : nullptr, e.act,
                                         static_cast<float>(kSlope)};
            if (use_packed)
              flowgrad::gemm<float>(m, n, k, sa.data(), lda, packed, c.data(), n, opt, ep);
            else
              flowgrad::gemm<float>(m, n, k, sa.data(), lda, sb.data(), ldb, c.data(), n, opt, ep);
            Index bad = 0;
            double worst = 0;
            for (Index i = 0; i < m; ++i)
              for (Index j = 0; j < n; ++j) {
                const auto ij = static_cast<std::size_t>(i * n + j);
                const double old = acc ? static_cast<double>(c0[ij]) : 0.0;
                const double bj =
                    e.bias ? static_cast<double>(bias[static_cast<std::size_t>(j)]) : 0.0;
                // Without a bias the epilogue is off: the activation is not applied either.
                const double want = e.bias ? activate(e.act, old + prod[ij] + bj) : old + prod[ij];
                const double tol =
                    static_cast<double>(k + 2) * eps * (mag[ij] + std::abs(old) + std::abs(bj)) +
                    4 * eps * std::abs(want);
                const double err = std::abs(static_cast<double>(c[ij]) - want);
                worst = std::max(worst, err / tol);
                if (!(err <= tol) && bad++ < 3) {
                  INFO("C(" << i << ", " << j << ") = " << c[ij] << ", reference " << want
                            << ", tolerance " << tol);
                  CHECK(false);
                }
              }
            INFO("worst error / tolerance " << worst);
            CHECK(bad == 0);
          }
    }
}

}  // namespace

TEST_CASE("float gemm against a double triple loop: thin shapes, every form and epilogue") {
  // n <= 4 and m <= 4 take the dot / axpy loops (the epilogue as a pass afterwards); k <= 4 with
  // n, m > 4 takes the small-k kernels with the epilogue in registers and a partial last batch of
  // columns; k = 1 and 2 are a 2-D coupling net's first layer.
  Generator gen(71);
  struct Dims {
    Index m, n, k;
  };
  for (const Dims d : {Dims{300, 3, 1}, Dims{129, 2, 2}, Dims{1000, 1, 37}, Dims{2, 300, 50},
                       Dims{300, 64, 1}, Dims{129, 37, 2}, Dims{7, 40, 1}, Dims{65, 9, 4}})
    check_shape(gen, d.m, d.n, d.k);
}

TEST_CASE("float gemm against a double triple loop: blocked shapes, every form and epilogue") {
  // Edges of the micro-tiles in every direction; 513 crosses two KC blocks (PackedB keeps no panels
  // there and gemm works from B itself), 129 x 257 fits one (the panels are used).
  Generator gen(72);
  check_shape(gen, 300, 257, 129);
  check_shape(gen, 145, 70, 513);
}
