#pragma once
// The kernels of gemm()'s blocked path: the register-blocked micro-kernel and the packing of B
// into the panels it streams. Included only from tensor/gemm_blocked.cpp.
#include <algorithm>
#include <cstddef>

#include <immintrin.h>

#include "flowgrad/tensor/detail/gemm_paths.hpp"

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

// Transposes the 8 x 8 floats (or 4 x 4 doubles) at src (row i at src + i * lds) into dst (row q
// at dst + q * ldd). 256-bit AVX on both ISAs: a 16 x 16 AVX-512 transpose needs four times the
// rows in flight for no more throughput, since the panel it feeds is written once per use.
inline void transpose_block(const float* src, Index lds, float* dst, Index ldd) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lds);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int h = 0; h < 8; h += 4) {  // within each 128-bit lane: rows h..h+3 -> their 4 columns
    r[h] = _mm256_shuffle_ps(t[h], t[h + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[h + 1] = _mm256_shuffle_ps(t[h], t[h + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[h + 2] = _mm256_shuffle_ps(t[h + 1], t[h + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[h + 3] = _mm256_shuffle_ps(t[h + 1], t[h + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int q = 0; q < 4; ++q) {
    _mm256_storeu_ps(dst + q * ldd, _mm256_permute2f128_ps(r[q], r[q + 4], 0x20));
    _mm256_storeu_ps(dst + (q + 4) * ldd, _mm256_permute2f128_ps(r[q], r[q + 4], 0x31));
  }
}

inline void transpose_block(const double* src, Index lds, double* dst, Index ldd) {
  __m256d r[4], t[4];
  for (int i = 0; i < 4; ++i) r[i] = _mm256_loadu_pd(src + i * lds);
  t[0] = _mm256_unpacklo_pd(r[0], r[1]);
  t[1] = _mm256_unpackhi_pd(r[0], r[1]);
  t[2] = _mm256_unpacklo_pd(r[2], r[3]);
  t[3] = _mm256_unpackhi_pd(r[2], r[3]);
  _mm256_storeu_pd(dst, _mm256_permute2f128_pd(t[0], t[2], 0x20));
  _mm256_storeu_pd(dst + ldd, _mm256_permute2f128_pd(t[1], t[3], 0x20));
  _mm256_storeu_pd(dst + 2 * ldd, _mm256_permute2f128_pd(t[0], t[2], 0x31));
  _mm256_storeu_pd(dst + 3 * ldd, _mm256_permute2f128_pd(t[1], t[3], 0x31));
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
        transpose_block(b.at(p, j0), b.cs, dst + p * nr_full + j0, nr_full);
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
