// gemm()'s blocked path, in the GotoBLAS/BLIS layout: op(B) packed into panels (or prepacked by
// PackedB), swept by a register-blocked micro-kernel over cache-sized blocks of A and C. Compiled
// once per ISA, with that ISA's register tile and cache blocks.
#include "flowgrad/tensor/detail/isa_prelude.hpp"

#include "flowgrad/tensor/detail/gemm_blocked_kernels.hpp"
#include "flowgrad/tensor/detail/gemm_paths.hpp"
#include "flowgrad/tensor/detail/isa_kernels.hpp"

#include <type_traits>

namespace flowgrad::FLOWGRAD_ISA_NS {
namespace {

using gemm_detail::in_registers;
using gemm_detail::kSmallK;
using gemm_detail::kSmallN;
using gemm_detail::scratch;
using gemm_detail::View;

// The register tile. A k-step of the micro-kernel reads MR values of A and NB batches of B, and
// does MR*NB FMAs into registers. AVX2 has 16 vector registers: 6 x 2 batches is 12 accumulators
// + 2 B batches + 1 broadcast of A. AVX-512 has 32: 6 x 4 batches is 24 accumulators + 4 + 1, and
// 10 loads per 24 FMAs. It keeps AVX2's 6 rows of A, read in place: with 12 rows (12 x 2 batches,
// as many accumulators) a row stride that is a multiple of 4 KB (a 1024-wide layer) puts all 12
// rows in one 8-way L1 set, and those products ran ~10% slower on Zen 4 than with 6 x 4.
template <class T, int NB>
struct Tile {
  static constexpr int nb = NB;
  static constexpr int mr = NB == 1 ? 8 : 6;
  static constexpr Index nr = NB * simd::width<T>;
};

template <class T>
using WideTile = Tile<T, simd::isa == Isa::avx512 ? 4 : 2>;

// A product n columns wide runs on the narrowest tile that still covers n in one panel (one or
// two batches), not the wide one: a MADE's output layer at d = 8 or a first layer's weight
// gradient (n = 8 or 16) would otherwise compute, and pack, 64 columns on AVX-512 to keep 8 or 16.
// One batch has only MR accumulators, so that tile takes 8 rows (8 independent FMA chains cover
// the FMA latency on two pipes). The choice depends on n alone, never on the thread count, so
// pack_b's panels and gemm's agree and results stay bit-identical across threads. Float only:
// double is the checking precision, not a speed path, and every tile instantiates a micro-kernel
// per row height, epilogue and A layout.
template <class T, class Body>
void with_tile(Index n, Body&& body) {
  if constexpr (std::is_same_v<T, float>) {
    constexpr Index w = simd::width<T>;
    if (n <= w) return body(Tile<T, 1>{});
    if constexpr (WideTile<T>::nb > 2)
      if (n <= 2 * w) return body(Tile<T, 2>{});
  }
  body(WideTile<T>{});
}

// The cache blocks, in elements, from the sizes the CPU reports (detail/cache_sizes.hpp):
// - KC: a packed B panel (KC x NR) takes half of L1, which leaves the other half to the MR rows of
//   A streaming past it and to C. 256 for AVX2 on a 32 KB L1, in float and in double (NR is 16
//   floats or 8 doubles); AVX-512's panels are four times as wide, so 64 there.
// - MC: the A block that a panel sweeps (MC x KC) takes 9/32 of L2, the share measured best on
//   Zen 3 (144 x 256 floats of its 512 KB, bench/results/gemm_tuning.md); a multiple of MR.
// - NC: the packed B block (KC x NC) takes at most 2 MB of L3, the size measured on Zen 3, and
//   less only on a CPU with under 32 MB (L3 is shared, and virtual machines report odd sizes:
//   320 MB on this project's KVM guest); a multiple of NR.
// KC sets where C's sums are rounded between blocks, so it is fixed per ISA and machine: the
// results never depend on the thread count, but may differ between machines with other caches.
struct CacheBlocks {
  Index kc, mc, nc;
};

// KC follows the wide tile for every tile: the narrow ones' panels are smaller, so theirs fit too.
template <class T, class TL>
const CacheBlocks& cache_blocks() {
  static const CacheBlocks blocks = [] {
    const ::flowgrad::detail::CacheSizes& cs = ::flowgrad::detail::cache_sizes();
    constexpr auto size = static_cast<Index>(sizeof(T));
    const Index kc = std::clamp<Index>(cs.l1d / 2 / (WideTile<T>::nr * size) / 16 * 16, 64, 512);
    const Index mc = std::clamp<Index>(cs.l2 * 9 / 32 / (kc * size) / TL::mr * TL::mr, TL::mr,
                                       1024 / TL::mr * TL::mr);
    const Index b_bytes = std::min<Index>(Index(2) << 20, cs.l3 / 16);
    const Index nc = std::max<Index>(TL::nr, b_bytes / (kc * size) / TL::nr * TL::nr);
    return CacheBlocks{kc, mc, nc};
  }();
  return blocks;
}

// The micro-kernel for a tile of mr <= MR live rows: one instantiation per height, so that edge
// tiles never read past A.
template <class T, class TL, bool ColMajorA, class Epi, int... R>
void run_tile_of(std::integer_sequence<int, R...>, Index mr, Index kc, const T* a, Index lda,
                 const T* bp, T* c, Index ldc, Index nr, bool load_c, const Epi& epi) {
  (void)((mr == R + 1 && (gemm_detail::micro_kernel<T, R + 1, TL::nb, ColMajorA, Epi>(
                              kc, a, lda, bp, c, ldc, nr, load_c, epi),
                          true)) ||
         ...);
}

template <class T, class TL, bool ColMajorA, class Epi>
void run_tile(Index mr, Index kc, const T* a, Index lda, const T* bp, T* c, Index ldc, Index nr,
              bool load_c, const Epi& epi) {
  run_tile_of<T, TL, ColMajorA>(std::make_integer_sequence<int, TL::mr>{}, mr, kc, a, lda, bp, c,
                                ldc, nr, load_c, epi);
}

// Copies the MC x KC block of a transposed A (element (i, p) at a[p * lda + i]) into MR-row
// tiles, tile t holding (t * MR + r, p) at t * MR * kc + p * MR + r: the layout the transposed-A
// micro-kernel reads with lda = MR. Read in place, each k-step of a tile would touch its own
// cache line of A (rows lda apart), and those lines with the packed B panel overflow L1.
template <class T, int MR>
void pack_a_transposed(Index mc, Index kc, const T* a, Index lda, T* packed) {
  constexpr Index mr = MR;
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
// B is packed, or prepacked: then panel j of op(B) (columns j * NR on) holds all of k, at
// prepacked + j * NR * k, and its KC block from pc is the KC steps at + pc * NR. A is read in
// place when row-major (MR contiguous rows stream well), and packed when transposed and swept by
// enough NR panels to repay the copy (kPackAPanels, chosen by the measurements in
// bench/results/gemm_tuning.md).
template <class T, class TL, bool ColMajorA>
void blocked(Index m, Index n, Index k, View<T> a, Index lda, View<T> b, T* c, Index ldc,
             bool accumulate, const GemmEpilogue<T>& ep, const T* prepacked) {
  const CacheBlocks& cb = cache_blocks<T, TL>();
  // A row-major op(B) exactly one panel wide, rows contiguous and aligned, already is its packed
  // panel: a weight gradient's activations at H = NR, which would otherwise be copied whole.
  const bool b_is_panel = !prepacked && n == TL::nr && b.cs == 1 && b.rs == TL::nr &&
                          reinterpret_cast<std::uintptr_t>(b.p) % alignof(gemm_detail::V<T>) == 0;
  T* packed = prepacked || b_is_panel
                  ? nullptr
                  : scratch<T>(0, std::min(k, cb.kc) *
                                      ((std::min(n, cb.nc) + TL::nr - 1) / TL::nr) * TL::nr);
  constexpr Index kPackAPanels = 8;
  T* packed_a =
      ColMajorA && n >= kPackAPanels * TL::nr ? scratch<T>(1, cb.mc * std::min(k, cb.kc)) : nullptr;
  for (Index jc = 0; jc < n; jc += cb.nc) {
    const Index nc = std::min(cb.nc, n - jc);
    for (Index pc = 0; pc < k; pc += cb.kc) {
      const Index kc = std::min(cb.kc, k - pc);
      const bool load_c = accumulate || pc > 0;
      if (packed)
        gemm_detail::pack_b_block<T, TL::nb>(kc, nc, View<T>{b.at(pc, jc), b.rs, b.cs}, packed);
      for (Index ic = 0; ic < m; ic += cb.mc) {
        const Index mc = std::min(cb.mc, m - ic);
        if (packed_a) pack_a_transposed<T, TL::mr>(mc, kc, a.at(ic, pc), lda, packed_a);
        for (Index jr = 0; jr < nc; jr += TL::nr) {
          const T* bp = prepacked    ? prepacked + (jc + jr) * k + pc * TL::nr
                        : b_is_panel ? b.at(pc, 0)
                                     : packed + jr * kc;
          const Index nr = std::min(TL::nr, nc - jr);
          auto sweep = [&](const auto& epi) {
            for (Index ir = 0; ir < mc; ir += TL::mr) {
              const Index mr = std::min<Index>(TL::mr, mc - ir);
              T* ct = c + (ic + ir) * ldc + jc + jr;
              if constexpr (ColMajorA) {
                if (packed_a) {
                  run_tile<T, TL, true>(mr, kc, packed_a + ir * kc, TL::mr, bp, ct, ldc, nr, load_c,
                                        epi);
                  continue;
                }
              }
              run_tile<T, TL, ColMajorA>(mr, kc, a.at(ic + ir, pc), lda, bp, ct, ldc, nr, load_c,
                                         epi);
            }
          };
          // The MC x NR block of C is final after the last KC step: the epilogue goes on it in
          // registers or, failing that, while the block is still in L1. (A transposed A is the
          // backward pass's, which has no epilogue: not worth its kernels' copies.)
          const bool finish = ep.bias && pc + kc == k;
          // (Wide tiles only: the narrow ones' few kernels are not worth an epilogue's copies.)
          if constexpr (!ColMajorA && TL::nb == WideTile<T>::nb)
            if (finish && nr == TL::nr && in_registers(ep, ep.bias + jc + jr, sweep)) continue;
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
  with_tile<T>(n, [&]<class TL>(TL) {
    if (nt <= 1)
      return blocked<T, TL, ColMajorA>(m, n, k, a, lda, b, c, ldc, accumulate, ep, prepacked);
    auto evenness = [nt](Index tiles) {
      return static_cast<double>(tiles) / static_cast<double>(nt * ((tiles + nt - 1) / nt));
    };
    if (evenness((m + TL::mr - 1) / TL::mr) + 0.05 >= evenness((n + TL::nr - 1) / TL::nr)) {
      simd::parallel_for(nt, m, TL::mr, [&](Index i0, Index i1) {
        blocked<T, TL, ColMajorA>(i1 - i0, n, k, rows_of(a, i0), lda, b, c + i0 * ldc, ldc,
                                  accumulate, ep, prepacked);
      });
    } else {
      simd::parallel_for(nt, n, TL::nr, [&](Index j0, Index j1) {
        GemmEpilogue<T> part = ep;
        if (part.bias) part.bias += j0;
        // Panel j0 / NR of a prepacked op(B) starts at j0 * k.
        blocked<T, TL, ColMajorA>(m, j1 - j0, k, a, lda, View<T>{b.at(0, j0), b.rs, b.cs}, c + j0,
                                  ldc, accumulate, part, prepacked ? prepacked + j0 * k : nullptr);
      });
    }
  });
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

// op(B) whole as the blocked path's panels, each holding all of k (see blocked()), for PackedB.
// Only the blocked path reads panels: the thin shapes read B in place.
template <class T>
bool pack_b(Index k, Index n, const T* b, Index ldb, bool trans_b, Tensor<T>& panels) {
  if (k <= kSmallK || n <= kSmallN) return false;
  with_tile<T>(n, [&]<class TL>(TL) {
    panels.resize(Shape{k * ((n + TL::nr - 1) / TL::nr * TL::nr)});
    const View<T> vb = trans_b ? View<T>{b, 1, ldb} : View<T>{b, ldb, 1};
    // Whole panels per thread (panel j0 / NR starts at j0 * k): an H = 256 layer's is 64K values,
    // which the caller alone would pack while the other threads wait.
    T* out = panels.data();
    simd::parallel_for(simd::threads_for(k * n, simd::kGrainCheap), n, TL::nr,
                       [&](Index j0, Index j1) {
                         gemm_detail::pack_b_block<T, TL::nb>(
                             k, j1 - j0, View<T>{vb.at(0, j0), vb.rs, vb.cs}, out + j0 * k);
                       });
  });
  return true;
}

template bool pack_b(Index, Index, const float*, Index, bool, Tensor<float>&);
template bool pack_b(Index, Index, const double*, Index, bool, Tensor<double>&);

}  // namespace flowgrad::FLOWGRAD_ISA_NS
