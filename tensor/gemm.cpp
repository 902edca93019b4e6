// Reference-speed gemm: correct for every transpose form; to be replaced by a packed,
// register-blocked kernel.
#include "tensor/gemm.hpp"

#include <algorithm>

namespace flowgrad {

template <class T>
void gemm(Index m, Index n, Index k, const T* a, Index lda, const T* b, Index ldb, T* c, Index ldc,
          GemmOptions opt) {
  for (Index i = 0; i < m; ++i) {
    T* crow = c + i * ldc;
    if (!opt.accumulate) std::fill(crow, crow + n, T(0));
    for (Index p = 0; p < k; ++p) {
      const T aip = opt.trans_a ? a[p * lda + i] : a[i * lda + p];
      if (opt.trans_b)
        for (Index j = 0; j < n; ++j) crow[j] += aip * b[j * ldb + p];
      else
        for (Index j = 0; j < n; ++j) crow[j] += aip * b[p * ldb + j];
    }
  }
}

template void gemm(Index, Index, Index, const float*, Index, const float*, Index, float*, Index,
                   GemmOptions);
template void gemm(Index, Index, Index, const double*, Index, const double*, Index, double*, Index,
                   GemmOptions);

}  // namespace flowgrad
