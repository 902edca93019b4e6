#pragma once
// Every Unary function and its derivative in float64, written with <cmath> independently of the
// SIMD rules (tensor/detail/unary_rules.hpp), for the kernel tests to compare against.
#include <cmath>

#include "flowgrad/tensor/ops.hpp"

namespace flowgrad::testing {

inline double ref_sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

inline double ref_f(Unary f, double x, double p) {
  switch (f) {
    case Unary::neg:
      return -x;
    case Unary::exp:
      return std::exp(x);
    case Unary::log:
      return std::log(x);
    case Unary::tanh:
      return std::tanh(x);
    case Unary::sigmoid:
      return ref_sigmoid(x);
    case Unary::softplus:
      // log(1 + e^x), split so that neither side overflows or rounds the tail away in double.
      return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
    case Unary::relu:
      return x > 0 ? x : 0;
    case Unary::leaky_relu:
      return x > 0 ? x : p * x;
    case Unary::square:
      return x * x;
    case Unary::sqrt:
      return std::sqrt(x);
    case Unary::sin:
      return std::sin(x);
    case Unary::cos:
      return std::cos(x);
    case Unary::abs:
      return std::fabs(x);
    case Unary::pow:
      return std::pow(x, p);
  }
  return std::nan("");
}

inline double ref_df(Unary f, double x, double p) {
  switch (f) {
    case Unary::neg:
      return -1;
    case Unary::exp:
      return std::exp(x);
    case Unary::log:
      return 1 / x;
    case Unary::tanh:
      return 1 / (std::cosh(x) * std::cosh(x));
    case Unary::sigmoid:
      return ref_sigmoid(x) * ref_sigmoid(-x);
    case Unary::softplus:
      return ref_sigmoid(x);
    case Unary::relu:
      return x > 0 ? 1 : 0;
    case Unary::leaky_relu:
      return x > 0 ? 1 : p;
    case Unary::square:
      return 2 * x;
    case Unary::sqrt:
      return 0.5 / std::sqrt(x);
    case Unary::sin:
      return std::cos(x);
    case Unary::cos:
      return -std::sin(x);
    case Unary::abs:
      return x > 0 ? 1 : (x < 0 ? -1 : 0);
    case Unary::pow:
      return p * std::pow(x, p - 1);
  }
  return std::nan("");
}

}  // namespace flowgrad::testing
