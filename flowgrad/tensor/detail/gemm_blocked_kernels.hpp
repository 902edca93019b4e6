#pragma once
// The kernels of gemm()'s blocked path: the register-blocked micro-kernel and the packing of B
// into the panels it streams. Included only from tensor/gemm_blocked.cpp.
#include <algorithm>
#include <cstddef>

#include <immintrin.h>

#include "flowgrad/tensor/detail/gemm_paths.hpp"
#include "flowgrad/tensor/detail/transpose.hpp"

namespace flowgrad::FLOWGRAD_ISA_NS::gemm_detail {

// --- Micro-kernel ------------------------------------------------------------------------------
// C[MR x NR] (+)= A[MR x kc] * Bpanel[kc x NR] with the MR*NB accumulators held in registers. A is
// read in place (rows contiguous along k, or columns contiguous when A is transposed); only B is
// packed, because B's panel is the operand streamed with vector loads. MR is the number of live
// rows: edge tiles instantiate a smaller MR rather than read past A. epi is applied to full-width
// tiles only (a right-edge tile must be given Plain).
template <class T, int MR, int NB, bool ColMajorA, class Epi = Plain>
void micro_kernel(Index kc, const T* a, Index lda, const T* bp, T* c, Index ldc, Index nr,
                  bool load_c, const Epi& epi = {}) {
  constexpr Index w = simd::width<T>;
  constexpr Index nr_full = NB * w;
  V<T> acc[MR][NB];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int q = 0; q < NB; ++q) acc[r][q] = V<T>(T(0));

  auto step = [&](const T* b, auto a_of) {
    V<T> bv[NB];
#pragma GCC unroll 4
    for (int q = 0; q < NB; ++q) bv[q] = V<T>::load_aligned(b + q * w);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const V<T> av(a_of(r));
#pragma GCC unroll 4
      for (int q = 0; q < NB; ++q) acc[r][q] = xsimd::fma(av, bv[q], acc[r][q]);
    }
  };

  if constexpr (ColMajorA) {
    // op(A)(r, p) = a[p * lda + r]: the MR values of one k-step sit side by side.
    for (Index p = 0; p < kc; ++p, a += lda, bp += nr_full) step(bp, [a](int r) { return a[r]; });
  } else {
    const T* rows[MR];
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) rows[r] = a + r * lda;
    for (Index p = 0; p < kc; ++p, bp += nr_full)
      step(bp, [&rows, p](int r) { return rows[r][p]; });
  }

  if (nr == nr_full) {
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
      for (int q = 0; q < NB; ++q) {
        T* cp = c + r * ldc + q * w;
        V<T> v = acc[r][q];
        if (load_c) v += V<T>::load_unaligned(cp);
        epi(v, q * w).store_unaligned(cp);
      }
    return;
  }
  // Right edge: the panel was zero-padded, so compute full width and keep the first nr columns:
  // whole batches straight from the registers, the last nr % w through a buffer one at a time
  // (as a copy loop, GCC calls memmove per row, which costs more than the copy).
  const Index whole = nr / w, tail = nr % w;
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    T* cr = c + r * ldc;
#pragma GCC unroll 4
    for (int q = 0; q < NB; ++q) {  // q known at compile time keeps acc in registers
      if (q < whole) {
        V<T> v = acc[r][q];
        if (load_c) v += V<T>::load_unaligned(cr + q * w);
        v.store_unaligned(cr + q * w);
      } else if (q == whole && tail) {
        alignas(64) T last[w];
        acc[r][q].store_aligned(last);
        T* ct = cr + q * w;
        if (load_c)
          for (Index j = 0; j < tail; ++j) ct[j] += last[j];
        else
          for (Index j = 0; j < tail; ++j) ct[j] = last[j];
      }
    }
  }
}

// Copies op(B)[kc x nr] into a panel laid out k-step by k-step, nr_full values each, zero-padded
// on the right so the micro-kernel never needs a column tail.
template <class T, int NB>
void pack_b_panel(Index kc, Index nr, View<T> b, T* dst) {
  constexpr Index w = simd::width<T>;
  constexpr Index nr_full = NB * w;
  if (b.cs == 1) {
    // Whole vectors, then the last few columns one by one: a call to memmove per k-step cost
    // more than the copy itself on the narrow panels of small layers.
    const Index vectors = nr / w;
    for (Index p = 0; p < kc; ++p) {
      const T* src = b.at(p, 0);
      T* out = dst + p * nr_full;
      for (Index q = 0; q < vectors; ++q)
        V<T>::load_unaligned(src + q * w).store_aligned(out + q * w);
      for (Index q = vectors; q < NB; ++q) V<T>(T(0)).store_aligned(out + q * w);
      for (Index j = vectors * w; j < nr; ++j) out[j] = src[j];
    }
    return;
  }
  if (nr < nr_full)
    for (Index p = 0; p < kc; ++p) std::fill(dst + p * nr_full + nr, dst + (p + 1) * nr_full, T(0));
  // Transposed B: column j of op(B) is a source row. Square blocks go through registers; what is
  // left at the right and bottom edges is copied one element at a time.
  constexpr Index s = 32 / sizeof(T);
  Index j0 = 0;
  if (b.rs == 1)
    for (; j0 + s <= nr; j0 += s) {
      Index p = 0;
      for (; p + s <= kc; p += s)
        detail::transpose_block(b.at(p, j0), b.cs, dst + p * nr_full + j0, nr_full);
      for (Index j = j0; j < j0 + s; ++j)
        for (Index pp = p; pp < kc; ++pp) dst[pp * nr_full + j] = b(pp, j);
    }
  for (Index j = j0; j < nr; ++j) {
    const T* src = b.at(0, j);
    for (Index p = 0; p < kc; ++p) dst[p * nr_full + j] = src[p * b.rs];
  }
}

// Packs op(B)[kc x nc] as consecutive panels (panel jr at dst + jr * kc). A row-major B is read
// row by row, all its full panels at once: panel by panel, every k-step would start a new row, and
// rows a power-of-two stride apart land in a few L1 sets (a 64-wide B: 16 of 64), so each panel
// would be fetched again from L2.
template <class T, int NB>
void pack_b_block(Index kc, Index nc, View<T> b, T* dst) {
  constexpr Index w = simd::width<T>;
  constexpr Index nr_full = NB * w;
  const Index full = b.cs == 1 ? nc / nr_full * nr_full : 0;
  for (Index p = 0; p < kc; ++p) {
    const T* src = b.at(p, 0);
    for (Index jr = 0; jr < full; jr += nr_full) {
      T* out = dst + jr * kc + p * nr_full;
#pragma GCC unroll 4
      for (int q = 0; q < NB; ++q)
        V<T>::load_unaligned(src + jr + q * w).store_aligned(out + q * w);
    }
  }
  for (Index jr = full; jr < nc; jr += nr_full)
    pack_b_panel<T, NB>(kc, std::min(nr_full, nc - jr), View<T>{b.at(0, jr), b.rs, b.cs},
                        dst + jr * kc);
}

}  // namespace flowgrad::FLOWGRAD_ISA_NS::gemm_detail
