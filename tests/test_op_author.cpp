// The op-author API as docs/design.md §9 shows it: a new op written outside the library, with its
// state in the node, gradchecked. If this file stops compiling, the document is out of date too.
#include <doctest/doctest.h>

#include <cmath>
#include <type_traits>

#include "flowgrad/autodiff/gradcheck.hpp"
#include "flowgrad/autodiff/op_author.hpp"
#include "flowgrad/tensor/random.hpp"
#include "gradcheck_helpers.hpp"

namespace flowgrad {
namespace {

// y = a sin(c x), so dy/dx = a c cos(c x).
template <Scalar T>
struct ScaledSin {
  struct State {
    T a, c;
  };

  static Var<T> forward(const Var<T>& x, T a, T c) {
    OpTape<T> tape(x.tape());
    Var<T> out;
    Node<T>& n = tape.push("scaled_sin", &ScaledSin::backward, {x}, &out);
    n.set_state(State{a, c});
    const Tensor<T>& xv = tape.value(x.index());
    n.value.resize(xv.shape());
    for (Index i = 0; i < xv.numel(); ++i) n.value[i] = a * std::sin(c * xv[i]);
    return out;
  }

  static void backward(OpTape<T>& tape, const Node<T>& n) {
    Tensor<T>* gx = tape.grad_for(n.in[0]);
    if (!gx) return;
    const State& s = state<State>(n);
    const Tensor<T>& x = tape.value(n.in[0]);
    for (Index i = 0; i < x.numel(); ++i) (*gx)[i] += n.grad[i] * s.a * s.c * std::cos(s.c * x[i]);
  }
};

template <Scalar T>
Var<T> scaled_sin(const Var<T>& x, std::type_identity_t<T> a, std::type_identity_t<T> c) {
  return ScaledSin<T>::forward(x, a, c);
}

}  // namespace

TEST_CASE(
    "an op written with op_author.hpp: its state survives to backward, and gradcheck passes") {
  Generator gen(3);
  CHECK_GRADCHECK(gradcheck(
      [](Tape<double>&, std::span<const Var<double>> in) {
        return testing::weighted_sum(scaled_sin(in[0], 1.5, -0.7));
      },
      {gen.normal<double>(Shape{5, 3})}));
  // Two nodes of the same op with different constants: each reads back its own state.
  Tape<double> t;
  const Var<double> x = t.constant(Tensor<double>(Shape{1, 1}, 0.3), true);
  t.backward(add(scaled_sin(x, 2.0, 1.0), scaled_sin(x, -1.0, 3.0)));
  CHECK(x.grad()[0] == doctest::Approx(2.0 * std::cos(0.3) - 3.0 * std::cos(0.9)));
}

}  // namespace flowgrad
