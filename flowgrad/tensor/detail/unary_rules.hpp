#pragma once
// Not installed: the one definition of every elementwise function, its derivative and its name,
// shared by the plain kernels (unary, unary_backward in tensor/elementwise.cpp), the fused bias +
// activation kernels (tensor/fused.cpp) and gemm's epilogue applied in registers. Keeping a single
// formula per function is what lets the fused and the plain paths give the same bits.
//
// A rule is a struct with
//   name                           the string used in node names, errors and checkpoints;
//   cheap(p), cheap_backward(p)    whether the pass costs a few arithmetic instructions per
//                                  element (threads split only large tensors, simd::kGrainCheap)
//                                  rather than a transcendental function (simd::kGrainMath);
//   forward(x, p)                  y = f(x);
//   derivative_from_output(y, p)   f'(x) from y = f(x), for the monotone functions, or else
//   derivative(x, p)               f'(x) from x.
// p is the rule's parameter (leaky_relu's negative slope, pow's exponent), given as a scalar by
// the plain kernels and as a batch by the fused ones; the rules that ignore it take either.
#include <stdexcept>
#include <string>
#include <type_traits>

#include "flowgrad/tensor/activation.hpp"
#include "flowgrad/tensor/detail/simd.hpp"
#include "flowgrad/tensor/ops.hpp"

namespace flowgrad::FLOWGRAD_ISA_NS::detail {

namespace rule {

template <class T>
using B = simd::batch<T>;

struct Identity {
  static constexpr const char* name = "none";  // the activation that leaves x as it is
  static constexpr bool cheap(double) { return true; }
  static constexpr bool cheap_backward(double) { return true; }
  template <class T>
  static B<T> forward(B<T> x, auto) {
    return x;
  }
  template <class T>
  static B<T> derivative_from_output(B<T>, auto) {
    return B<T>(T(1));
  }
};

struct Neg {
  static constexpr const char* name = "neg";
  static constexpr bool cheap(double) { return true; }
  static constexpr bool cheap_backward(double) { return true; }
  template <class T>
  static B<T> forward(B<T> x, auto) {
    return -x;
  }
  template <class T>
  static B<T> derivative(B<T>, auto) {
    return B<T>(T(-1));
  }
};

struct Exp {
  static constexpr const char* name = "exp";
  static constexpr bool cheap(double) { return false; }
  static constexpr bool cheap_backward(double) { return true; }
  template <class T>
  static B<T> forward(B<T> x, auto) {
    return simd::exp(x);
  }
  template <class T>
  static B<T> derivative_from_output(B<T> y, auto) {
    return y;
  }
};

struct Log {
  static constexpr const char* name = "log";
  static constexpr bool cheap(double) { return false; }
  static constexpr bool cheap_backward(double) { return true; }
  template <class T>
  static B<T> forward(B<T> x, auto) {
    return xsimd::log(x);
  }
  template <class T>
  static B<T> derivative(B<T> x, auto) {
    return B<T>(T(1)) / x;
  }
};

struct Tanh {
  static constexpr const char* name = "tanh";
  static constexpr bool cheap(double) { return false; }
  static constexpr bool cheap_backward(double) { return true; }
  template <class T>
  static B<T> forward(B<T> x, auto) {
    return simd::tanh(x);
  }
  template <class T>
  static B<T> derivative_from_output(B<T> y, auto) {
    return B<T>(T(1)) - y * y;
  }
};

struct Sigmoid {
  static constexpr const char* name = "sigmoid";
  static constexpr bool cheap(double) { return false; }
  static constexpr bool cheap_backward(double) { return true; }
  template <class T>
  static B<T> forward(B<T> x, auto) {
    const B<T> one(T(1));
    return one / (one + simd::exp(-x));
  }
  template <class T>
  static B<T> derivative_from_output(B<T> y, auto) {
    return y * (B<T>(T(1)) - y);
  }
};

struct Softplus {
  static constexpr const char* name = "softplus";
  static constexpr bool cheap(double) { return false; }
  static constexpr bool cheap_backward(double) { return false; }
  // log(1 + e^x) as max(x, 0) + log1p(e^-|x|): no overflow for large x, and no loss of the small
  // tail for very negative x.
  template <class T>
  static B<T> forward(B<T> x, auto) {
    return xsimd::max(x, B<T>(T(0))) + xsimd::log1p(simd::exp(-xsimd::abs(x)));
  }
  // softplus' = sigmoid(x) = 1 - e^-y; expm1 keeps it exact for tiny y (very negative x).
  template <class T>
  static B<T> derivative_from_output(B<T> y, auto) {
    return -simd::expm1(-y);
  }
};

struct Relu {
  static constexpr const char* name = "relu";
  static constexpr bool cheap(double) { return true; }
  static constexpr bool cheap_backward(double) { return true; }
  template <class T>
  static B<T> forward(B<T> x, auto) {
    return xsimd::max(x, B<T>(T(0)));
  }
  // y > 0 exactly where x > 0, so the kink at 0 gets the derivative 0 either way.
  template <class T>
  static B<T> derivative_from_output(B<T> y, auto) {
    return xsimd::select(y > B<T>(T(0)), B<T>(T(1)), B<T>(T(0)));
  }
};

// The slope is taken positive: the function is then monotone and y > 0 exactly where x > 0.
struct LeakyRelu {
  static constexpr const char* name = "leaky_relu";
  static constexpr bool cheap(double) { return true; }
  static constexpr bool cheap_backward(double) { return true; }
  template <class T>
  static B<T> forward(B<T> x, auto slope) {
    return xsimd::select(x > B<T>(T(0)), x, x * B<T>(slope));
  }
  template <class T>
  static B<T> derivative_from_output(B<T> y, auto slope) {
    return xsimd::select(y > B<T>(T(0)), B<T>(T(1)), B<T>(slope));
  }
};

struct Square {
  static constexpr const char* name = "square";
  static constexpr bool cheap(double) { return true; }
  static constexpr bool cheap_backward(double) { return true; }
  template <class T>
  static B<T> forward(B<T> x, auto) {
    return x * x;
  }
  template <class T>
  static B<T> derivative(B<T> x, auto) {
    return x + x;
  }
};

struct Sqrt {
  static constexpr const char* name = "sqrt";
  static constexpr bool cheap(double) { return true; }
  static constexpr bool cheap_backward(double) { return true; }
  template <class T>
  static B<T> forward(B<T> x, auto) {
    return xsimd::sqrt(x);
  }
  template <class T>
  static B<T> derivative_from_output(B<T> y, auto) {
    return B<T>(T(0.5)) / y;
  }
};

struct Sin {
  static constexpr const char* name = "sin";
  static constexpr bool cheap(double) { return false; }
  static constexpr bool cheap_backward(double) { return false; }
  template <class T>
  static B<T> forward(B<T> x, auto) {
    return xsimd::sin(x);
  }
  template <class T>
  static B<T> derivative(B<T> x, auto) {
    return xsimd::cos(x);
  }
};

struct Cos {
  static constexpr const char* name = "cos";
  static constexpr bool cheap(double) { return false; }
  static constexpr bool cheap_backward(double) { return false; }
  template <class T>
  static B<T> forward(B<T> x, auto) {
    return xsimd::cos(x);
  }
  template <class T>
  static B<T> derivative(B<T> x, auto) {
    return -xsimd::sin(x);
  }
};

struct Abs {
  static constexpr const char* name = "abs";
  static constexpr bool cheap(double) { return true; }
  static constexpr bool cheap_backward(double) { return true; }
  template <class T>
  static B<T> forward(B<T> x, auto) {
    return xsimd::abs(x);
  }
  // sign(x), taken as 0 at x = 0.
  template <class T>
  static B<T> derivative(B<T> x, auto) {
    const B<T> zero(T(0));
    return xsimd::select(x > zero, B<T>(T(1)), xsimd::select(x < zero, B<T>(T(-1)), zero));
  }
};

// The exponent is a scalar: the exact special cases are chosen by comparing it.
struct Pow {
  static constexpr const char* name = "pow";
  // The exponents computed by multiplication, division or sqrt rather than simd::pow, which goes
  // through exp(p log x): slower, not exact, and NaN for x < 0 unless p is an integer.
  static constexpr bool exact(double p) {
    return p == 2 || p == 1 || p == 0 || p == 0.5 || p == -1 || p == 3;
  }
  static constexpr bool cheap(double p) { return exact(p); }
  static constexpr bool cheap_backward(double p) { return exact(p - 1); }
  template <class T>
  static B<T> forward(B<T> x, T p) {
    if (p == T(2)) return x * x;
    if (p == T(1)) return x;
    if (p == T(0)) return B<T>(T(1));
    if (p == T(0.5)) return xsimd::sqrt(x);
    if (p == T(-1)) return B<T>(T(1)) / x;
    if (p == T(3)) return x * x * x;
    return simd::pow(x, p);
  }
  template <class T>
  static B<T> derivative(B<T> x, T p) {
    return B<T>(p) * forward(x, T(p - T(1)));
  }
};

}  // namespace rule

// Whether a rule gives its derivative from the output (all the fused kernels keep).
template <class R>
concept FromOutput = requires(simd::batch<float> y) {
  R::derivative_from_output(y, 0.0f);
};

// f'(x) for a rule, from whichever of x and y = f(x) the rule uses.
template <class R, class T, class P>
simd::batch<T> derivative(simd::batch<T> x, simd::batch<T> y, P p) {
  if constexpr (FromOutput<R>)
    return R::derivative_from_output(y, p);
  else
    return R::derivative(x, p);
}

// body(tag) with decltype(tag)::type the rule of f: the kernels' inner loops then hold no switch
// (a switch per batch kept them from inlining the function at all).
template <class Body>
decltype(auto) with_unary(Unary f, Body body) {
  switch (f) {
    case Unary::neg:
      return body(std::type_identity<rule::Neg>{});
    case Unary::exp:
      return body(std::type_identity<rule::Exp>{});
    case Unary::log:
      return body(std::type_identity<rule::Log>{});
    case Unary::tanh:
      return body(std::type_identity<rule::Tanh>{});
    case Unary::sigmoid:
      return body(std::type_identity<rule::Sigmoid>{});
    case Unary::softplus:
      return body(std::type_identity<rule::Softplus>{});
    case Unary::relu:
      return body(std::type_identity<rule::Relu>{});
    case Unary::leaky_relu:
      return body(std::type_identity<rule::LeakyRelu>{});
    case Unary::square:
      return body(std::type_identity<rule::Square>{});
    case Unary::sqrt:
      return body(std::type_identity<rule::Sqrt>{});
    case Unary::sin:
      return body(std::type_identity<rule::Sin>{});
    case Unary::cos:
      return body(std::type_identity<rule::Cos>{});
    case Unary::abs:
      return body(std::type_identity<rule::Abs>{});
    case Unary::pow:
      return body(std::type_identity<rule::Pow>{});
  }
  throw std::invalid_argument("not a Unary value: " + std::to_string(static_cast<int>(f)));
}

// The rule behind each activation.
template <Activation A>
struct activation_rule;
template <>
struct activation_rule<Activation::none> : std::type_identity<rule::Identity> {};
template <>
struct activation_rule<Activation::relu> : std::type_identity<rule::Relu> {};
template <>
struct activation_rule<Activation::leaky_relu> : std::type_identity<rule::LeakyRelu> {};
template <>
struct activation_rule<Activation::tanh> : std::type_identity<rule::Tanh> {};
template <>
struct activation_rule<Activation::sigmoid> : std::type_identity<rule::Sigmoid> {};
template <>
struct activation_rule<Activation::softplus> : std::type_identity<rule::Softplus> {};
template <Activation A>
using ActivationRule = typename activation_rule<A>::type;

inline constexpr Activation kActivations[] = {Activation::none,       Activation::relu,
                                              Activation::leaky_relu, Activation::tanh,
                                              Activation::sigmoid,    Activation::softplus};

// What with_activation passes: the activation as a constant (value) and its rule (type).
template <Activation A>
struct ActivationTag : std::type_identity<ActivationRule<A>> {
  static_assert(FromOutput<ActivationRule<A>>,
                "the fused kernels keep only an activation's output");
  static constexpr Activation value = A;
};

// body(tag) with decltype(tag)::value the activation and decltype(tag)::type its rule.
template <class Body>
decltype(auto) with_activation(Activation act, Body body) {
  using enum Activation;
  switch (act) {
    case none:
      return body(ActivationTag<none>{});
    case relu:
      return body(ActivationTag<relu>{});
    case leaky_relu:
      return body(ActivationTag<leaky_relu>{});
    case tanh:
      return body(ActivationTag<tanh>{});
    case sigmoid:
      return body(ActivationTag<sigmoid>{});
    case softplus:
      return body(ActivationTag<softplus>{});
  }
  throw std::invalid_argument("not an Activation value: " + std::to_string(static_cast<int>(act)));
}

// act(x) and act'(x) from y = act(x), as the fused kernels and gemm's epilogue apply them.
template <Activation A, class T>
simd::batch<T> activate(simd::batch<T> x, simd::batch<T> slope) {
  return ActivationRule<A>::forward(x, slope);
}
template <Activation A, class T>
simd::batch<T> derivative_from_output(simd::batch<T> y, simd::batch<T> slope) {
  return ActivationRule<A>::derivative_from_output(y, slope);
}

}  // namespace flowgrad::FLOWGRAD_ISA_NS::detail
