// gemm(): a cache-blocked, register-blocked matrix multiply in the GotoBLAS/BLIS layout, plus
// direct loops for the thin shapes of small 2-D flows (k, n or m of a few), where packing and
// tile edges would cost more than the arithmetic.
#include "flowgrad/tensor/detail/gemm.hpp"

#include <algorithm>
#include <cstddef>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>

#include "flowgrad/tensor/detail/fused_block.hpp"
#include "flowgrad/tensor/detail/gemm_kernels.hpp"

namespace flowgrad {
namespace {

using gemm_detail::Out;
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

// Thin-shape thresholds: n (or m) up to this uses the dot/axpy loops; k up to kSmallK uses the
// row-combination loop.
constexpr Index kSmallN = 4;
constexpr Index kSmallK = 4;

// Intra-op parallelism: a product is split between threads only when each thread gets at least
// this many multiply-adds (measured with bench/bench_threads.cpp on 2 Zen 4 cores, where a
// fork/join costs about 1 us: 2^18 multiply-adds take the blocked path ~5 us, the thin paths,
// which are bound by loads and stores rather than FMAs, about three times as long). The split is
// always over independent blocks of C (rows, or column panels), so no element is written by two
// threads, nothing is reduced afterwards, and every element is summed in the same order as on one
// thread: the result is bit-identical at any thread count.
constexpr Index kGemmGrain = Index(1) << 18;
constexpr Index kGemmGrainThin = Index(1) << 16;

// Per-thread scratch that only grows, 64-byte aligned: after the first call of a given size, gemm
// allocates nothing.
template <class T>
T* scratch(int slot, Index count) {
  struct Free {
    void operator()(T* p) const { ::operator delete[](p, std::align_val_t{64}); }
  };
  struct Buffer {
    std::unique_ptr<T[], Free> data;
    Index capacity = 0;
  };
  thread_local Buffer buffers[2];
  Buffer& buf = buffers[slot];
  if (buf.capacity < count) {
    const Index grown = std::max(count, buf.capacity * 2);
    buf.data.reset(static_cast<T*>(
        ::operator new[](static_cast<std::size_t>(grown) * sizeof(T), std::align_val_t{64})));
    buf.capacity = grown;
  }
  return buf.data.get();
}

// --- Blocked path --------------------------------------------------------------------------------

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

// Calls body(epi) with the epilogue as a BiasActivation, to be applied in the kernels' registers,
// and returns true, for the piecewise-linear activations; returns false for the transcendental
// ones, which keep the pass over each finished block: their cost dwarfs that pass, and their code
// would be copied into every kernel. bias is the tile's first column.
template <class T, class Body>
bool in_registers(const GemmEpilogue<T>& ep, const T* bias, Body&& body) {
  using gemm_detail::BiasActivation;
  const simd::batch<T> slope(ep.slope);
  switch (ep.act) {
    case Activation::none:
      body(BiasActivation<T, Activation::none>{bias, slope});
      return true;
    case Activation::relu:
      body(BiasActivation<T, Activation::relu>{bias, slope});
      return true;
    case Activation::leaky_relu:
      body(BiasActivation<T, Activation::leaky_relu>{bias, slope});
      return true;
    default:
      return false;
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
// packed when transposed and swept by enough NR panels to repay the copy (measured: H = 256
// steps at batch 4096 ~7% faster, H = 64 ones, with 4 panels, ~5% slower).
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

// --- Thin paths ----------------------------------------------------------------------------------

// Rows [i0, i1) of op(A) and of C.
template <class T>
View<T> rows_of(View<T> a, Index i0) {
  return View<T>{a.at(i0, 0), a.rs, a.cs};
}
template <class T>
Out<T> rows_of(Out<T> c, Index i0) {
  return Out<T>{&c(i0, 0), c.rs, c.cs};
}

// The views go by reference: passed by value, g++ builds each one on the stack with scalar stores
// and reloads it with one vector load, a stalled store forwarding that cost about a third of a
// 1 x 1 x 8 product and a few percent of a 256 x 1 x 64 one.
template <class T, int NN>
void small_n_fixed(Index m, Index k, const View<T>& a, const View<T>& b, const Out<T>& c,
                   bool accumulate, int nt) {
  if (a.cs == 1) {
    // Dot-product form: op(B)'s columns must be contiguous; pack them unless B is transposed.
    const T* cols[NN];
    if (b.rs == 1) {
      for (int j = 0; j < NN; ++j) cols[j] = b.at(0, j);
    } else {
      T* packed = scratch<T>(1, NN * k);
      for (int j = 0; j < NN; ++j) {
        for (Index p = 0; p < k; ++p) packed[j * k + p] = b(p, j);
        cols[j] = packed + j * k;
      }
    }
    // Chunks of whole 8-row groups: every row goes through the same dot_rows<R> as on one thread.
    simd::parallel_for(nt, m, 8, [&](Index i0, Index i1) {
      gemm_detail::small_n_dot<T, NN>(i1 - i0, k, rows_of(a, i0), cols, rows_of(c, i0), accumulate);
    });
  } else {
    // Chunks of whole batches of rows, each summed into its thread's own scratch.
    simd::parallel_for(nt, m, simd::width<T>, [&](Index i0, Index i1) {
      gemm_detail::small_n_axpy<T, NN>(i1 - i0, k, rows_of(a, i0), b, rows_of(c, i0), accumulate,
                                       scratch<T>(1, NN * (i1 - i0)));
    });
  }
}

template <class T>
void small_n(Index m, Index n, Index k, const View<T>& a, const View<T>& b, const Out<T>& c,
             bool accumulate, int nt) {
  switch (n) {
    case 1:
      return small_n_fixed<T, 1>(m, k, a, b, c, accumulate, nt);
    case 2:
      return small_n_fixed<T, 2>(m, k, a, b, c, accumulate, nt);
    case 3:
      return small_n_fixed<T, 3>(m, k, a, b, c, accumulate, nt);
    default:
      return small_n_fixed<T, 4>(m, k, a, b, c, accumulate, nt);
  }
}

template <class T, int K>
void small_k_fixed(Index m, Index n, View<T> a, const T* packed, Index ldp, T* c, Index ldc,
                   bool accumulate, const GemmEpilogue<T>& ep, int nt) {
  // Chunks of whole 4-row groups, as on one thread; with an epilogue, taken kEpilogueRows rows at
  // a time so that each block of C gets it while still in L1.
  constexpr Index kEpilogueRows = 64;
  const Index step = ep.bias ? kEpilogueRows : m;
  simd::parallel_for(nt, m, 4, [&](Index i0, Index i1) {
    for (Index r0 = i0; r0 < i1; r0 += step) {
      const Index rows = std::min(step, i1 - r0);
      T* cr = c + r0 * ldc;
      auto run = [&](const auto& epi) {
        gemm_detail::small_k<T, K>(rows, n, rows_of(a, r0), packed, ldp, cr, ldc, accumulate, epi);
      };
      // In registers, the epilogue covers whole batches of columns; a last partial one gets the
      // pass.
      Index done = 0;
      if (ep.bias && in_registers(ep, ep.bias, run))
        done = n / simd::width<T> * simd::width<T>;
      else
        run(gemm_detail::Plain{});
      if (ep.bias && done < n)
        detail::bias_activation_block(cr + done, ldc, rows, n - done, ep.bias + done, ep.act,
                                      ep.slope);
    }
  });
}

template <class T>
void small_k(Index m, Index n, Index k, View<T> a, View<T> b, T* c, Index ldc, bool accumulate,
             const GemmEpilogue<T>& ep, int nt) {
  constexpr Index w = simd::width<T>;
  const Index ldp = (n + w - 1) / w * w;
  T* packed = scratch<T>(1, k * ldp);
  for (Index p = 0; p < k; ++p) {
    T* row = packed + p * ldp;
    for (Index j = 0; j < n; ++j) row[j] = b(p, j);
    std::fill(row + n, row + ldp, T(0));
  }
  switch (k) {
    case 1:
      return small_k_fixed<T, 1>(m, n, a, packed, ldp, c, ldc, accumulate, ep, nt);
    case 2:
      return small_k_fixed<T, 2>(m, n, a, packed, ldp, c, ldc, accumulate, ep, nt);
    case 3:
      return small_k_fixed<T, 3>(m, n, a, packed, ldp, c, ldc, accumulate, ep, nt);
    default:
      return small_k_fixed<T, 4>(m, n, a, packed, ldp, c, ldc, accumulate, ep, nt);
  }
}

// The blocked path on nt threads: C split into row blocks (whole MR tiles) or column panels (whole
// NR panels), whichever divides more evenly, rows on a near tie (each thread then reads only its
// rows of A, and packs the B it shares, which is small when m is what is large). Each thread packs
// its own B panels into its own scratch.
template <class T, bool ColMajorA>
void blocked_mt(Index m, Index n, Index k, View<T> a, Index lda, View<T> b, T* c, Index ldc,
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

template <class T>
void gemm_impl(Index m, Index n, Index k, const T* a, Index lda, const T* b, Index ldb, T* c,
               Index ldc, GemmOptions opt, const GemmEpilogue<T>& ep, const T* prepacked) {
  if (m <= 0 || n <= 0) return;
  // The thin paths below write C in one go; the epilogue then takes one pass over it, which for
  // their few rows or columns costs little.
  auto finish = [&] {
    if (ep.bias) detail::bias_activation_block(c, ldc, m, n, ep.bias, ep.act, ep.slope);
  };
  if (k <= 0) {
    if (!opt.accumulate)
      for (Index i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, T(0));
    return finish();
  }
  const View<T> va = opt.trans_a ? View<T>{a, 1, lda} : View<T>{a, lda, 1};
  const View<T> vb = opt.trans_b ? View<T>{b, 1, ldb} : View<T>{b, ldb, 1};
  const int nt = simd::threads_for(m * n * k, kGemmGrain);
  const int nt_thin = simd::threads_for(m * n * k, kGemmGrainThin);
  if (n <= kSmallN) {
    small_n(m, n, k, va, vb, Out<T>{c, ldc, 1}, opt.accumulate, nt_thin);
    return finish();
  }
  // C^T = op(B)^T op(A)^T turns a short m into a short n: same loops, C written transposed.
  if (m <= kSmallN) {
    small_n(n, m, k, View<T>{b, vb.cs, vb.rs}, View<T>{a, va.cs, va.rs}, Out<T>{c, 1, ldc},
            opt.accumulate, nt_thin);
    return finish();
  }
  if (k <= kSmallK) return small_k(m, n, k, va, vb, c, ldc, opt.accumulate, ep, nt_thin);
  if (opt.trans_a)
    blocked_mt<T, true>(m, n, k, va, lda, vb, c, ldc, opt.accumulate, ep, prepacked, nt);
  else
    blocked_mt<T, false>(m, n, k, va, lda, vb, c, ldc, opt.accumulate, ep, prepacked, nt);
}

}  // namespace

template <class T>
void gemm(Index m, Index n, Index k, const T* a, Index lda, const T* b, Index ldb, T* c, Index ldc,
          GemmOptions opt, const GemmEpilogue<T>& ep) {
  gemm_impl(m, n, k, a, lda, b, ldb, c, ldc, opt, ep, static_cast<const T*>(nullptr));
}

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

template <class T>
void gemm(Index m, Index n, Index k, const T* a, Index lda, const PackedB<T>& b, T* c, Index ldc,
          GemmOptions opt, const GemmEpilogue<T>& ep) {
  if (n != b.n() || k != b.k() || opt.trans_b != b.trans_b())
    throw std::invalid_argument("gemm: B was packed as " + std::to_string(b.k()) + " x " +
                                std::to_string(b.n()) + (b.trans_b() ? " transposed" : "") +
                                ", the product needs " + std::to_string(k) + " x " +
                                std::to_string(n) + (opt.trans_b ? " transposed" : ""));
  gemm_impl(m, n, k, a, lda, b.b(), b.ldb(), c, ldc, opt, ep, b.panels());
}

template void gemm(Index, Index, Index, const float*, Index, const float*, Index, float*, Index,
                   GemmOptions, const GemmEpilogue<float>&);
template void gemm(Index, Index, Index, const double*, Index, const double*, Index, double*, Index,
                   GemmOptions, const GemmEpilogue<double>&);
template class PackedB<float>;
template class PackedB<double>;
template void gemm(Index, Index, Index, const float*, Index, const PackedB<float>&, float*, Index,
                   GemmOptions, const GemmEpilogue<float>&);
template void gemm(Index, Index, Index, const double*, Index, const PackedB<double>&, double*,
                   Index, GemmOptions, const GemmEpilogue<double>&);

}  // namespace flowgrad
