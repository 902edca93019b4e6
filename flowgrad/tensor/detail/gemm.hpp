#pragma once
// Not installed: the matrix multiply underneath matmul(), on raw row-major storage with leading
// dimensions.
#include "flowgrad/tensor/activation.hpp"
#include "flowgrad/tensor/gemm_options.hpp"
#include "flowgrad/tensor/isa.hpp"
#include "flowgrad/tensor/tensor.hpp"

namespace flowgrad {

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

// op(B) packed once for several products that share it (the MLP node multiplies every block of
// rows by the same weights), so that gemm() does not pack it again for each. The panels are laid
// out for the ISA active when pack() ran; gemm() uses them only while that ISA is still active,
// and otherwise, as for the thin shapes that read B in place, works from B itself. B must outlive
// the packing and stay unchanged while it is used.
template <class T>
class PackedB {
 public:
  void pack(Index k, Index n, const T* b, Index ldb, bool trans_b);

  Index k() const { return k_; }
  Index n() const { return n_; }
  const T* b() const { return b_; }
  Index ldb() const { return ldb_; }
  bool trans_b() const { return trans_b_; }
  // The panels, if any, and the ISA whose layout they have.
  const T* panels() const { return has_panels_ ? panels_.data() : nullptr; }
  Isa isa() const { return isa_; }

 private:
  const T* b_ = nullptr;
  Index k_ = 0, n_ = 0, ldb_ = 0;
  bool trans_b_ = false, has_panels_ = false;
  Isa isa_ = Isa::avx2;
  Tensor<T> panels_;  // grows only: re-packing allocates nothing
};

// gemm() with op(B) = b as packed. n, k and opt.trans_b must be those b was packed with
// (std::invalid_argument otherwise).
template <class T>
void gemm(Index m, Index n, Index k, const T* a, Index lda, const PackedB<T>& b, T* c, Index ldc,
          GemmOptions opt, const GemmEpilogue<T>& epilogue = {});

}  // namespace flowgrad
