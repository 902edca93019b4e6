// gemm()'s blocked path, in the GotoBLAS/BLIS layout: op(B) packed into panels (or prepacked by
// PackedB), swept by a register-blocked micro-kernel over cache-sized blocks of A and C.
#include <algorithm>
#include <cstddef>

#include "flowgrad/tensor/detail/fused_block.hpp"
#include "flowgrad/tensor/detail/gemm.hpp"
#include "flowgrad/tensor/detail/gemm_blocked_kernels.hpp"
#include "flowgrad/tensor/detail/gemm_paths.hpp"

namespace flowgrad {
namespace {

using gemm_detail::in_registers;
using gemm_detail::kSmallK;
using gemm_detail::kSmallN;
using gemm_detail::scratch;
using gemm_detail::View;

// Block sizes, in elements. A k-step of the micro-kernel reads MR values of A and NB batches of
// B, and does MR*NB FMAs into registers: 6 x 2 batches is 12 accumulators + 2 B batches + 1
// broadcast of A, which fills the 16 vector registers of AVX2. KC keeps a packed B panel
// (KC x NR) in L1 (16 KB for float and for double); MC keeps the A block that the panel sweeps
// (MC x KC) within L2; NC bounds the packed B block (KC x NC), which lives in L2/L3.
template <class T>
struct Blocking {
  static constexpr int mr = 6;
  static constexpr int nb = 2;
  static constexpr Index nr = nb * simd::width<T>;
  static constexpr Index kc = 256;
  static constexpr Index mc = sizeof(T) == 4 ? 144 : 72;
  static constexpr Index nc = sizeof(T) == 4 ? 2048 : 1024;
};

template <class T, bool ColMajorA, class Epi>
void run_tile(Index mr, Index kc, const T* a, Index lda, const T* bp, T* c, Index ldc, Index nr,
              bool load_c, const Epi& epi) {
  using BK = Blocking<T>;
  static_assert(BK::mr == 6, "the dispatch below lists every edge height up to mr");
  switch (mr) {
    case 6:
      return gemm_detail::micro_kernel<T, 6, BK::nb, ColMajorA, Epi>(kc, a, lda, bp, c, ldc, nr,
                                                                     load_c, epi);
    case 5:
      return gemm_detail::micro_kernel<T, 5, BK::nb, ColMajorA, Epi>(kc, a, lda, bp, c, ldc, nr,
                                                                     load_c, epi);
    case 4:
      return gemm_detail::micro_kernel<T, 4, BK::nb, ColMajorA, Epi>(kc, a, lda, bp, c, ldc, nr,
                                                                     load_c, epi);
    case 3:
      return gemm_detail::micro_kernel<T, 3, BK::nb, ColMajorA, Epi>(kc, a, lda, bp, c, ldc, nr,
                                                                     load_c, epi);
    case 2:
      return gemm_detail::micro_kernel<T, 2, BK::nb, ColMajorA, Epi>(kc, a, lda, bp, c, ldc, nr,
                                                                     load_c, epi);
    default:
      return gemm_detail::micro_kernel<T, 1, BK::nb, ColMajorA, Epi>(kc, a, lda, bp, c, ldc, nr,
                                                                     load_c, epi);
  }
}

// Copies the MC x KC block of a transposed A (element (i, p) at a[p * lda + i]) into MR-row
// tiles, tile t holding (t * MR + r, p) at t * MR * kc + p * MR + r: the layout the transposed-A
// micro-kernel reads with lda = MR. Read in place, each k-step of a tile would touch its own
// cache line of A (rows lda apart), and those lines with the packed B panel overflow L1.
template <class T>
void pack_a_transposed(Index mc, Index kc, const T* a, Index lda, T* packed) {
  constexpr Index mr = Blocking<T>::mr;
  const Index full = mc / mr, rest = mc % mr;
  for (Index p = 0; p < kc; ++p) {
    const T* row = a + p * lda;
    T* out = packed + p * mr;
    for (Index t = 0; t < full; ++t, row += mr, out += mr * kc)
      for (Index r = 0; r < mr; ++r) out[r] = row[r];
    for (Index r = 0; r < rest; ++r) out[r] = row[r];
  }
}

// Loop order jc (NC) -> pc (KC, pack B) -> ic (MC) -> jr (NR panel, in L1) -> ir (MR rows).
// B is always packed; A is read in place when row-major (MR contiguous rows stream well), and
// packed when transposed and swept by enough NR panels to repay the copy (kPackAPanels, chosen by
// the measurements in bench/results/gemm_tuning.md).
// prepacked, when given, is op(B) packed whole (a single KC x NC block; see PackedB).
template <class T, bool ColMajorA>
void blocked(Index m, Index n, Index k, View<T> a, Index lda, View<T> b, T* c, Index ldc,
             bool accumulate, const GemmEpilogue<T>& ep, const T* prepacked) {
  using BK = Blocking<T>;
  T* packed = prepacked ? nullptr
                        : scratch<T>(0, std::min(k, BK::kc) *
                                            ((std::min(n, BK::nc) + BK::nr - 1) / BK::nr) * BK::nr);
  constexpr Index kPackAPanels = 8;
  T* packed_a = ColMajorA && n >= kPackAPanels * BK::nr
                    ? scratch<T>(1, BK::mc * std::min(k, BK::kc))
                    : nullptr;
  for (Index jc = 0; jc < n; jc += BK::nc) {
    const Index nc = std::min(BK::nc, n - jc);
    for (Index pc = 0; pc < k; pc += BK::kc) {
      const Index kc = std::min(BK::kc, k - pc);
      const bool load_c = accumulate || pc > 0;
      if (!prepacked)
        gemm_detail::pack_b_block<T, BK::nb>(kc, nc, View<T>{b.at(pc, jc), b.rs, b.cs}, packed);
      const T* bpack = prepacked ? prepacked : packed;
      for (Index ic = 0; ic < m; ic += BK::mc) {
        const Index mc = std::min(BK::mc, m - ic);
        if (packed_a) pack_a_transposed(mc, kc, a.at(ic, pc), lda, packed_a);
        for (Index jr = 0; jr < nc; jr += BK::nr) {
          const T* bp = bpack + jr * kc;
          const Index nr = std::min(BK::nr, nc - jr);
          auto sweep = [&](const auto& epi) {
            for (Index ir = 0; ir < mc; ir += BK::mr) {
              const Index mr = std::min<Index>(BK::mr, mc - ir);
              T* ct = c + (ic + ir) * ldc + jc + jr;
              if constexpr (ColMajorA) {
                if (packed_a) {
                  run_tile<T, true>(mr, kc, packed_a + ir * kc, BK::mr, bp, ct, ldc, nr, load_c,
                                    epi);
                  continue;
                }
              }
              run_tile<T, ColMajorA>(mr, kc, a.at(ic + ir, pc), lda, bp, ct, ldc, nr, load_c, epi);
            }
          };
          // The MC x NR block of C is final after the last KC step: the epilogue goes on it in
          // registers or, failing that, while the block is still in L1. (A transposed A is the
          // backward pass's, which has no epilogue: not worth its kernels' copies.)
          const bool finish = ep.bias && pc + kc == k;
          if constexpr (!ColMajorA)
            if (finish && nr == BK::nr && in_registers(ep, ep.bias + jc + jr, sweep)) continue;
          sweep(gemm_detail::Plain{});
          if (finish)
            detail::bias_activation_block(c + ic * ldc + jc + jr, ldc, mc, nr, ep.bias + jc + jr,
                                          ep.act, ep.slope);
        }
      }
    }
  }
}

}  // namespace

namespace gemm_detail {

// The blocked path on nt threads: C split into row blocks (whole MR tiles) or column panels (whole
// NR panels), whichever divides more evenly, rows on a near tie (each thread then reads only its
// rows of A, and packs the B it shares, which is small when m is what is large). Each thread packs
// its own B panels into its own scratch.
template <class T, bool ColMajorA>
void gemm_blocked(Index m, Index n, Index k, View<T> a, Index lda, View<T> b, T* c, Index ldc,
                  bool accumulate, const GemmEpilogue<T>& ep, const T* prepacked, int nt) {
  using BK = Blocking<T>;
  if (nt <= 1) return blocked<T, ColMajorA>(m, n, k, a, lda, b, c, ldc, accumulate, ep, prepacked);
  auto evenness = [nt](Index tiles) {
    return static_cast<double>(tiles) / static_cast<double>(nt * ((tiles + nt - 1) / nt));
  };
  if (evenness((m + BK::mr - 1) / BK::mr) + 0.05 >= evenness((n + BK::nr - 1) / BK::nr)) {
    simd::parallel_for(nt, m, BK::mr, [&](Index i0, Index i1) {
      blocked<T, ColMajorA>(i1 - i0, n, k, rows_of(a, i0), lda, b, c + i0 * ldc, ldc, accumulate,
                            ep, prepacked);
    });
  } else {
    simd::parallel_for(nt, n, BK::nr, [&](Index j0, Index j1) {
      GemmEpilogue<T> part = ep;
      if (part.bias) part.bias += j0;
      // Panel jr of a packed op(B) starts at jr * k.
      blocked<T, ColMajorA>(m, j1 - j0, k, a, lda, View<T>{b.at(0, j0), b.rs, b.cs}, c + j0, ldc,
                            accumulate, part, prepacked ? prepacked + j0 * k : nullptr);
    });
  }
}

template void gemm_blocked<float, false>(Index, Index, Index, View<float>, Index, View<float>,
                                         float*, Index, bool, const GemmEpilogue<float>&,
                                         const float*, int);
template void gemm_blocked<float, true>(Index, Index, Index, View<float>, Index, View<float>,
                                        float*, Index, bool, const GemmEpilogue<float>&,
                                        const float*, int);
template void gemm_blocked<double, false>(Index, Index, Index, View<double>, Index, View<double>,
                                          double*, Index, bool, const GemmEpilogue<double>&,
                                          const double*, int);
template void gemm_blocked<double, true>(Index, Index, Index, View<double>, Index, View<double>,
                                         double*, Index, bool, const GemmEpilogue<double>&,
                                         const double*, int);

}  // namespace gemm_detail

template <class T>
void PackedB<T>::pack(Index k, Index n, const T* b, Index ldb, bool trans_b) {
  using BK = Blocking<T>;
  b_ = b;
  k_ = k;
  n_ = n;
  ldb_ = ldb;
  trans_b_ = trans_b;
  // Only the blocked path reads panels, and only a single cache block is kept.
  has_panels_ = k > kSmallK && n > kSmallN && k <= BK::kc && n <= BK::nc;
  if (!has_panels_) return;
  panels_.resize(Shape{k * ((n + BK::nr - 1) / BK::nr * BK::nr)});
  const View<T> vb = trans_b ? View<T>{b, 1, ldb} : View<T>{b, ldb, 1};
  // Whole panels per thread (panel jr starts at jr * k): an H = 256 layer's is 64K values, which
  // the caller alone would pack while the other threads wait.
  T* out = panels_.data();
  simd::parallel_for(simd::threads_for(k * n, simd::kGrainCheap), n, BK::nr,
                     [&](Index j0, Index j1) {
                       gemm_detail::pack_b_block<T, BK::nb>(
                           k, j1 - j0, View<T>{vb.at(0, j0), vb.rs, vb.cs}, out + j0 * k);
                     });
}

template class PackedB<float>;
template class PackedB<double>;

}  // namespace flowgrad
