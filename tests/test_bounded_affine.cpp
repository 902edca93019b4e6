// bounded_affine(): against the same transform written with plain ops, gradients in both
// directions against central differences, the bound, and float against double.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "flowgrad/autodiff/gradcheck.hpp"
#include "flowgrad/autodiff/ops.hpp"
#include "flowgrad/tensor/random.hpp"
#include "gradcheck_helpers.hpp"

using namespace flowgrad;

namespace {

// Params with raw log-scales large enough that tanh saturates for some of them.
Tensor<double> params_for(Generator& gen, Index n, Index d) {
  return gen.normal<double>(Shape{n, 2 * d}, 0.0, 4.0);
}

}  // namespace

TEST_CASE("bounded_affine: the transform of select_columns, tanh and affine_columns") {
  Generator gen(61);
  const double b = 2.5;
  // d = 9: a SIMD batch and a tail; n = 37: several of the op's chunks of elements, a row
  // straddling each chunk boundary. Values and gradients.
  for (Index n : {5, 37})
    for (Index d : {1, 3, 9})
      for (bool inverse : {false, true}) {
        CAPTURE(n);
        CAPTURE(d);
        CAPTURE(inverse);
        const Tensor<double> x = gen.normal<double>(Shape{n, d}), p = params_for(gen, n, d);
        std::vector<Index> all, shift, raw;
        for (Index i = 0; i < d; ++i) {
          all.push_back(i);
          shift.push_back(2 * i);
          raw.push_back(2 * i + 1);
        }
        Tape<double> t;
        const auto xr = t.constant(x, true), pr = t.constant(p, true);
        const auto r = bounded_affine(xr, pr, b, inverse);
        const auto xv = t.constant(x, true), pv = t.constant(p, true);
        const auto s = tanh(select_columns(pv, raw) * (1 / b)) * b;
        const auto ref = affine_columns(xv, s, select_columns(pv, shift), all, inverse);
        const auto ref_ld = sum(s, 1);
        t.backward(add(add(testing::weighted_sum(r.out, 7), testing::weighted_sum(r.log_det, 8)),
                       add(testing::weighted_sum(ref, 7),
                           testing::weighted_sum(inverse ? -ref_ld : ref_ld, 8))));
        for (Index k = 0; k < x.numel(); ++k)
          CHECK(xr.grad()[k] == doctest::Approx(xv.grad()[k]).epsilon(1e-12));
        for (Index k = 0; k < p.numel(); ++k)
          CHECK(pr.grad()[k] == doctest::Approx(pv.grad()[k]).epsilon(1e-12));
        for (Index k = 0; k < n * d; ++k)
          CHECK(r.out.value()[k] == doctest::Approx(ref.value()[k]).epsilon(1e-14));
        for (Index i = 0; i < n; ++i) {
          const double ld = inverse ? -ref_ld.value()[i] : ref_ld.value()[i];
          CHECK(r.log_det.value()[i] == doctest::Approx(ld).epsilon(1e-14));
          CHECK(std::abs(r.log_det.value()[i]) < double(d) * b);
        }
      }
}

TEST_CASE("bounded_affine: gradcheck of both outputs, forward and inverse") {
  Generator gen(62);
  for (Index d : {2, 9})
    for (bool inverse : {false, true})
      for (bool used_later : {false, true}) {
        CAPTURE(d);
        CAPTURE(inverse);
        // Inputs that a later node also reads have a gradient already when this node's backward
        // runs, which it must add to rather than overwrite.
        CAPTURE(used_later);
        const Index n = 4;
        const Tensor<double> x = gen.normal<double>(Shape{n, d});
        const Tensor<double> p = gen.normal<double>(Shape{n, 2 * d}, 0.0, 2.0);
        CHECK_GRADCHECK(gradcheck(
            [&](Tape<double>&, std::span<const Var<double>> in) {
              const auto r = bounded_affine(in[0], in[1], 3.0, inverse);
              Var<double> loss =
                  add(testing::weighted_sum(r.out, 7), testing::weighted_sum(r.log_det, 8));
              if (used_later)
                loss = add(loss, add(testing::weighted_sum(mul(in[0], in[0]), 9),
                                     testing::weighted_sum(mul(in[1], in[1]), 10)));
              return loss;
            },
            {x, p}));
      }
}

TEST_CASE("bounded_affine: float agrees with double; inverse undoes forward; bad shapes") {
  Generator gen(63);
  const Index n = 33, d = 5;
  const Tensor<double> x = gen.normal<double>(Shape{n, d}), p = params_for(gen, n, d);
  Tensor<float> xf(x.shape()), pf(p.shape());
  for (Index k = 0; k < x.numel(); ++k) xf[k] = float(x[k]);
  for (Index k = 0; k < p.numel(); ++k) pf[k] = float(p[k]);
  Tape<double> td;
  Tape<float> tf;
  const auto rd =
      bounded_affine(td.constant(xf.cast<double>()), td.constant(pf.cast<double>()), 3.0);
  const auto rf = bounded_affine(tf.constant(xf), tf.constant(pf), 3.0f);
  for (Index k = 0; k < n * d; ++k)
    CHECK(double(rf.out.value()[k]) == doctest::Approx(rd.out.value()[k]).epsilon(1e-5).scale(1.0));
  for (Index i = 0; i < n; ++i)
    CHECK(double(rf.log_det.value()[i]) == doctest::Approx(rd.log_det.value()[i]).epsilon(1e-5));
  const auto back = bounded_affine(rd.out, td.constant(pf.cast<double>()), 3.0, true);
  for (Index k = 0; k < n * d; ++k)
    CHECK(back.out.value()[k] == doctest::Approx(double(xf[k])).epsilon(1e-12));
  for (Index i = 0; i < n; ++i)
    CHECK(back.log_det.value()[i] == doctest::Approx(-rd.log_det.value()[i]).epsilon(1e-12));
  CHECK_THROWS_AS(bounded_affine(td.constant(x), td.constant(x), 3.0), std::invalid_argument);
  CHECK_THROWS_AS(bounded_affine(td.constant(x), td.constant(p), 0.0), std::invalid_argument);
}
