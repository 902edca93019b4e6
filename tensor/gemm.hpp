#pragma once
// The matrix multiply underneath matmul(), on raw row-major storage with leading dimensions.
#include "tensor/shape.hpp"

namespace flowgrad {

struct GemmOptions {
  bool trans_a = false;     // use A^T, reading A in place
  bool trans_b = false;     // use B^T, reading B in place
  bool accumulate = false;  // C += op(A) op(B) instead of C = op(A) op(B)
};

// C[m x n] (+)= op(A)[m x k] * op(B)[k x n]. A is m x k (k x m when transposed), row-major with
// leading dimension lda; likewise B and C. T is float or double.
template <class T>
void gemm(Index m, Index n, Index k, const T* a, Index lda, const T* b, Index ldb, T* c, Index ldc,
          GemmOptions opt);

}  // namespace flowgrad
