#pragma once
// The matrix multiply underneath matmul(), on raw row-major storage with leading dimensions.
#include "tensor/fused.hpp"
#include "tensor/shape.hpp"

namespace flowgrad {

struct GemmOptions {
  bool trans_a = false;     // use A^T, reading A in place
  bool trans_b = false;     // use B^T, reading B in place
  bool accumulate = false;  // C += op(A) op(B) instead of C = op(A) op(B)
};

// Optionally applied by gemm() to each finished block of C while the block is still in cache:
// C = act(C + bias), bias a row of n values (a layer's forward pass in one sweep over C).
template <class T>
struct GemmEpilogue {
  const T* bias = nullptr;  // null: C is left as the product
  Activation act = Activation::none;
  T slope = T(0.01);  // leaky_relu's negative slope
};

// C[m x n] (+)= op(A)[m x k] * op(B)[k x n]. A is m x k (k x m when transposed), row-major with
// leading dimension lda; likewise B and C. T is float or double.
template <class T>
void gemm(Index m, Index n, Index k, const T* a, Index lda, const T* b, Index ldb, T* c, Index ldc,
          GemmOptions opt, const GemmEpilogue<T>& epilogue = {});

}  // namespace flowgrad
