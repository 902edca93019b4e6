// The names of the elementwise ops and activations (from their rules in
// tensor/detail/unary_rules.hpp), and the broadcasting rule of the binary ops: what every ISA
// shares, compiled once.
#include <stdexcept>
#include <string>

#include "flowgrad/tensor/activation.hpp"
#include "flowgrad/tensor/detail/unary_rules.hpp"
#include "flowgrad/tensor/ops.hpp"

namespace flowgrad {

const char* to_string(Unary f) {
  return FLOWGRAD_ISA_NS::detail::with_unary(f,
                                             [](auto rule) { return decltype(rule)::type::name; });
}

const char* to_string(Binary f) {
  switch (f) {
    case Binary::add:
      return "add";
    case Binary::sub:
      return "sub";
    case Binary::mul:
      return "mul";
    case Binary::div:
      return "div";
  }
  return "?";
}

const char* to_string(Activation a) {
  return FLOWGRAD_ISA_NS::detail::with_activation(
      a, [](auto rule) { return decltype(rule)::type::name; });
}

Activation activation_from_string(const std::string& s) {
  std::string choices;
  for (Activation a : FLOWGRAD_ISA_NS::detail::kActivations) {
    if (s == to_string(a)) return a;
    choices += (choices.empty() ? "" : ", ") + std::string(to_string(a));
  }
  throw std::invalid_argument("unknown activation '" + s + "' (" + choices + ")");
}

Shape broadcast_shape(const char* op, const Shape& a, const Shape& b) {
  auto fail = [&]() -> Shape {
    throw std::invalid_argument(std::string(op) + ": cannot broadcast shapes " + a.str() + " and " +
                                b.str());
  };
  if (a.rank() > 2 || b.rank() > 2) return fail();
  if (a == b) return a;
  auto dim = [&](Index x, Index y) -> Index {
    if (x == y || y == 1) return x;
    if (x == 1) return y;
    fail();
    return 0;
  };
  return Shape{dim(a.rows(), b.rows()), dim(a.cols(), b.cols())};
}

}  // namespace flowgrad
