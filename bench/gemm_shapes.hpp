#pragma once
// The gemm shapes of an MLP's forward and backward passes, shared by bench_kernels (ours against
// OpenBLAS) and bench_threads (1 against 2 threads). Benchmark names carry a shape as
// "<pass>/m:<m>/n:<n>/k:<k>/ta:<0|1>/tb:<0|1>"; scripts parse it.
#include <array>
#include <span>
#include <string>
#include <vector>

#include "flowgrad/tensor/shape.hpp"

namespace bench {

using flowgrad::Index;

struct GemmShape {
  const char* pass;  // fwd, bwd_dx, bwd_dw; fwd_wxt: the forward as y^T = W x^T
  Index m, n, k;
  bool ta, tb;
};

// An MLP layer y = x W^T with W stored [out, in] as in PyTorch, at batch size b:
//   forward       Y[b, out]   = X[b, in] W^T       m = b,   n = out, k = in,  trans_b
//   backward dX   dX[b, in]   = dY[b, out] W       m = b,   n = in,  k = out
//   backward dW   dW[out, in] = dY^T X             m = out, n = in,  k = b,   trans_a
// for every batch size and every layer {in, out}.
inline std::vector<GemmShape> mlp_shapes(std::span<const Index> batches,
                                         std::span<const std::array<Index, 2>> layers) {
  std::vector<GemmShape> out;
  for (const Index b : batches)
    for (const auto& [in, width] : layers) {
      out.push_back({"fwd", b, width, in, false, true});
      out.push_back({"bwd_dx", b, in, width, false, false});
      out.push_back({"bwd_dw", width, in, b, true, false});
    }
  return out;
}

inline std::string gemm_suffix(const GemmShape& s) {
  return std::string(s.pass) + "/m:" + std::to_string(s.m) + "/n:" + std::to_string(s.n) +
         "/k:" + std::to_string(s.k) + "/ta:" + std::to_string(s.ta) +
         "/tb:" + std::to_string(s.tb);
}

}  // namespace bench
