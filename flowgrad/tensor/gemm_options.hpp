#pragma once
// How matmul() reads and writes its operands.

namespace flowgrad {

struct GemmOptions {
  bool trans_a = false;     // use A^T, reading A in place
  bool trans_b = false;     // use B^T, reading B in place
  bool accumulate = false;  // C += op(A) op(B) instead of C = op(A) op(B)
};

}  // namespace flowgrad
