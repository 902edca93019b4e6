#pragma once
// Shared by the gradient-check suites.
#include <doctest/doctest.h>

#include "flowgrad/autodiff/gradcheck.hpp"
#include "flowgrad/autodiff/ops.hpp"
#include "flowgrad/tensor/random.hpp"

namespace flowgrad::testing {

// sum(y * w) with fixed random weights w: every output element gets its own weight, so a gradient
// routed to the wrong element (a transpose, a broadcast summed the wrong way) cannot cancel out.
inline Var<double> weighted_sum(const Var<double>& y, std::uint64_t seed = 99) {
  Generator gen(seed);
  return sum(mul(y, y.tape().constant(gen.normal<double>(y.shape()))));
}

// Normal values pushed at least `margin` away from zero, for ops with a kink or a pole there.
inline Tensor<double> away_from_zero(Generator& gen, Shape s, double margin = 0.1) {
  Tensor<double> t = gen.normal<double>(s);
  for (Index i = 0; i < t.numel(); ++i) t[i] += t[i] >= 0 ? margin : -margin;
  return t;
}

inline Tensor<double> positive(Generator& gen, Shape s, double low = 0.2, double high = 2.0) {
  return gen.uniform<double>(s, low, high);
}

#define CHECK_GRADCHECK(result)       \
  do {                                \
    const auto gc_result_ = (result); \
    INFO(gc_result_.message);         \
    CHECK(gc_result_.ok);             \
  } while (0)

}  // namespace flowgrad::testing
