#pragma once
// What the op files share: node creation, and gradient accumulation that undoes broadcasting.
// Not installed.
#include "flowgrad/autodiff/op_author.hpp"
#include "flowgrad/autodiff/ops.hpp"
#include "flowgrad/tensor/detail/fused.hpp"
#include "flowgrad/tensor/detail/gemm.hpp"
#include "flowgrad/tensor/ops.hpp"

namespace flowgrad::detail {

// Scratch slots of the tape used by backward rules; slot 0 is backward()'s seed.
inline constexpr int scratch_a = 1;
inline constexpr int scratch_b = 2;

// Pushes a node for `op` whose gradient rule is Op::backward, and returns it for its value.
template <class Op, Scalar T>
Node<T>& push(const char* op, Var<T>* out, std::initializer_list<Var<T>> inputs) {
  return OpTape<T>(inputs.begin()->tape()).push(op, &Op::backward, inputs, out);
}

// acc += scale * g, summing over the rows or columns that broadcasting expanded.
template <Scalar T>
void accumulate(OpTape<T>& tape, const Tensor<T>& g, Tensor<T>& acc, T scale = T(1)) {
  if (acc.rows() == g.rows() && acc.cols() == g.cols()) {
    // Same elements, possibly a different rank ([n] against [1, n]).
    const Index n = g.numel();
    const T* gp = g.data();
    T* ap = acc.data();
    for (Index i = 0; i < n; ++i) ap[i] += scale * gp[i];
    return;
  }
  if (scale == T(1)) return accumulate_reduced(g, acc);
  Tensor<T>& s = tape.scratch(scratch_b);
  s = g;
  const Index n = s.numel();
  T* sp = s.data();
  for (Index i = 0; i < n; ++i) sp[i] *= scale;
  accumulate_reduced(s, acc);
}

// A rule's gradient for count elements, into dst[l * stride]: written when the buffer is fresh
// (grad_for()'s *overwrite: sized but not zeroed), added otherwise.
template <Scalar T>
void deposit(const T* src, Index count, T* dst, bool fresh, Index stride = 1) {
  if (fresh)
    for (Index l = 0; l < count; ++l) dst[l * stride] = src[l];
  else
    for (Index l = 0; l < count; ++l) dst[l * stride] += src[l];
}

}  // namespace flowgrad::detail

#define FLOWGRAD_FOR_EACH_SCALAR(X) X(float) X(double)
