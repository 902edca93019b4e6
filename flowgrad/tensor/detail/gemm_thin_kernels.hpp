#pragma once
// The kernels of gemm()'s thin-shape path (n, m or k of a few), which read op(B) in place or
// barely packed: dot products of rows of A, row-vectorised A^T, and rows of C as combinations of
// rows of B. Included only from tensor/gemm_thin.cpp.
#include <algorithm>
#include <cstddef>
#include <type_traits>

#include "flowgrad/tensor/detail/gemm_paths.hpp"

namespace flowgrad::FLOWGRAD_ISA_NS::gemm_detail {

// Loads a batch into a register the compiler must keep: without this, g++ folds the load into
// every FMA that uses the value, turning one load into NN loads in the thin loops, where loads and
// not FMAs are the bottleneck.
template <class T>
inline V<T> load_once(const T* p) {
  typename V<T>::register_type r = V<T>::load_unaligned(p);
  asm("" : "+x"(r));
  return V<T>(r);
}

// out[t] = the sum of the lanes of acc[t], for 16 batches of 16 floats (AVX-512). xsimd 8.1's
// AVX-512 haddp returns the sums in the wrong lanes (found by test_matmul in a -march=native
// build), and 16 separate horizontal sums made AVX-512's thin products (n = 1 or 2) twice as slow
// as AVX2's. So each batch is folded to 8 lanes, its two halves added, and AVX2's haddp
// transposes and sums each 8 of those.
template <class T>
inline void haddp16(const V<T>* acc, T* out) {
  static_assert(std::is_same_v<T, float> && V<T>::size == 16, "for AVX-512 float batches");
#if XSIMD_WITH_AVX512F
  using Half = xsimd::batch<float, xsimd::fma3<xsimd::avx2>>;
  Half halves[16];
#pragma GCC unroll 16
  for (int t = 0; t < 16; ++t) {
    const __m512 r = acc[t];
    const __m256 high = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(r), 1));
    halves[t] = Half(_mm256_add_ps(_mm512_castps512_ps256(r), high));
  }
  xsimd::haddp(halves).store_unaligned(out);
  xsimd::haddp(halves + 8).store_unaligned(out + 8);
#else
  (void)acc;
  (void)out;
#endif
}

// Writes (or adds) a value into C.
template <class T>
inline void put(T& dst, T value, bool accumulate) {
  dst = accumulate ? dst + value : value;
}

// n <= 4 with op(A) rows contiguous along k (A not transposed): each output is a dot product of a
// row of A with a column of op(B); the columns are given contiguous in bcol[j]. R rows at a time
// keep R*NN independent accumulator chains in flight, and R*NN is a multiple of the batch width
// (padded with idle zeros otherwise) so that one transposing reduction (haddp) per width of
// accumulators replaces that many separate horizontal sums.
//
// The R rows are read side by side, a pattern the hardware prefetchers follow late, so each row is
// also prefetched kDotPrefetchBlocks blocks ahead. Not, though, for an A that fits in L2 (a
// layer's activations, just written) and has rows of at least kDotLongRowBytes: the hardware
// prefetchers then keep up, and the prefetches only take load slots; short rows it does not
// follow. The constants were chosen by the measurements in bench/results/gemm_tuning.md.
constexpr Index kDotPrefetchBlocks = 2;
constexpr Index kDotL2Bytes = 256 * 1024;
constexpr Index kDotLongRowBytes = 1024;
template <class T, int NN, int R, bool Prefetch>
void dot_rows(Index i0, Index k, View<T> a, const T* const* bcol, Out<T> c, bool accumulate) {
  constexpr int w = static_cast<int>(simd::width<T>);
  constexpr int groups = (NN * R + w - 1) / w;
  V<T> acc[groups * w];  // acc[r * NN + j]: row-major like a dense block of C
#pragma GCC unroll 16
  for (int t = 0; t < groups * w; ++t) acc[t] = V<T>(T(0));
  const T* rows[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) rows[r] = a.at(i0 + r, 0);
  const Index kv = k / w * w;
  for (Index p = 0; p < kv; p += w) {
    V<T> bv[NN];
#pragma GCC unroll 4
    for (int j = 0; j < NN; ++j) bv[j] = V<T>::load_unaligned(bcol[j] + p);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      if (Prefetch && p % (64 / sizeof(T)) == 0)
        __builtin_prefetch(rows[r] + p + kDotPrefetchBlocks * R * a.rs);
      const V<T> av = NN > 1 ? load_once(rows[r] + p) : V<T>::load_unaligned(rows[r] + p);
#pragma GCC unroll 4
      for (int j = 0; j < NN; ++j) acc[r * NN + j] = xsimd::fma(av, bv[j], acc[r * NN + j]);
    }
  }
  alignas(64) T sums[groups * w];
#pragma GCC unroll 4
  for (int g = 0; g < groups; ++g) {
    if constexpr (w <= 8)
      xsimd::haddp(acc + g * w).store_aligned(sums + g * w);
    else
      haddp16(acc + g * w, sums + g * w);
  }
  if (kv < k) {
    for (int j = 0; j < NN; ++j)
      for (int r = 0; r < R; ++r)
        for (Index p = kv; p < k; ++p) sums[r * NN + j] += rows[r][p] * bcol[j][p];
  }
  if (NN * R == groups * w && c.rs == NN && (NN == 1 || c.cs == 1)) {
    // The R x NN block of C is contiguous (ldc = n): whole batches instead of R * NN scalar
    // stores, which are a noticeable share of a thin product (bench/results/gemm_tuning.md).
#pragma GCC unroll 4
    for (int g = 0; g < groups; ++g) {
      V<T> v = V<T>::load_aligned(sums + g * w);
      if (accumulate) v += V<T>::load_unaligned(&c(i0, 0) + g * w);
      v.store_unaligned(&c(i0, 0) + g * w);
    }
    return;
  }
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < NN; ++j) put(c(i0 + r, j), sums[r * NN + j], accumulate);
}

template <class T, int NN, bool Prefetch>
void dot_all_rows(Index m, Index k, View<T> a, const T* const* bcol, Out<T> c, bool accumulate) {
  // At most 8 rows side by side, for any width: 16 row streams (a 16-float AVX-512 batch's worth)
  // ran the n = 1, k = 256 product at half AVX2's speed on Zen 4, whose prefetchers lose track.
  constexpr int rows =
      NN == 1 ? static_cast<int>(std::min<Index>(simd::width<T>, 8)) : (NN == 2 ? 4 : 2);
  Index i = 0;
  for (; i + rows <= m; i += rows) dot_rows<T, NN, rows, Prefetch>(i, k, a, bcol, c, accumulate);
  for (; i < m; ++i) dot_rows<T, NN, 1, Prefetch>(i, k, a, bcol, c, accumulate);
}

template <class T, int NN>
void small_n_dot(Index m, Index k, View<T> a, const T* const* bcol, Out<T> c, bool accumulate) {
  const Index row_bytes = k * static_cast<Index>(sizeof(T));
  if (row_bytes < kDotLongRowBytes || m * row_bytes > kDotL2Bytes)
    dot_all_rows<T, NN, true>(m, k, a, bcol, c, accumulate);
  else
    dot_all_rows<T, NN, false>(m, k, a, bcol, c, accumulate);
}

// acc[j][0..IB) over the rows [p0, p1) of column-major op(A) (A stored k x m, so a run of rows
// i..i+w is contiguous at every k-step): sum_p op(A)(i, p) * op(B)(p, j). The IB batches of the
// row kAxpyPrefetchRows k-steps ahead are prefetched: with several row blocks each walking its own
// strided column of A, the hardware prefetchers alone leave the loads waiting on L2/L3.
constexpr Index kAxpyPrefetchRows = 8;
template <class T, int NN, int IB>
void axpy_block(Index i0, Index p0, Index p1, View<T> a, View<T> b, T* tmp, Index m, bool first) {
  constexpr Index w = simd::width<T>;
  V<T> acc[NN][IB];
#pragma GCC unroll 4
  for (int j = 0; j < NN; ++j)
#pragma GCC unroll 8
    for (int q = 0; q < IB; ++q)
      acc[j][q] = first ? V<T>(T(0)) : V<T>::load_unaligned(tmp + j * m + i0 + q * w);
  for (Index p = p0; p < p1; ++p) {
    const T* ap = a.at(i0, p);
#pragma GCC unroll 8
    for (int q = 0; q < IB * int(sizeof(V<T>)) / 64; ++q)
      __builtin_prefetch(reinterpret_cast<const char*>(ap + kAxpyPrefetchRows * a.cs) + q * 64);
    V<T> av[IB];
#pragma GCC unroll 8
    for (int q = 0; q < IB; ++q)
      av[q] = NN > 1 ? load_once(ap + q * w) : V<T>::load_unaligned(ap + q * w);
#pragma GCC unroll 4
    for (int j = 0; j < NN; ++j) {
      const V<T> bj(b(p, j));
#pragma GCC unroll 8
      for (int q = 0; q < IB; ++q) acc[j][q] = xsimd::fma(av[q], bj, acc[j][q]);
    }
  }
#pragma GCC unroll 4
  for (int j = 0; j < NN; ++j)
#pragma GCC unroll 8
    for (int q = 0; q < IB; ++q) acc[j][q].store_unaligned(tmp + j * m + i0 + q * w);
}

// tmp[j][0..m) += sum over the P k-steps p..p+P of op(A)(i, p) * op(B)(p, j), for column-major
// op(A): P whole rows of the stored A (contiguous, and adjacent when A is dense) are read front to
// back while the sums for each batch of C make one round trip through tmp (in L1), shared by P
// FMAs. Each element takes its k-steps in order, one FMA each, as in axpy_block. The rows of the
// next pass are prefetched: the P rows are P streams, which the hardware prefetchers pick up late.
template <class T, int NN, int P>
void axpy_rows(Index m, Index p, View<T> a, View<T> b, T* tmp) {
  constexpr Index w = simd::width<T>;
  V<T> bv[P][NN];
  const T* rows[P];
#pragma GCC unroll 8
  for (int s = 0; s < P; ++s) {
    rows[s] = a.at(0, p + s);
#pragma GCC unroll 4
    for (int j = 0; j < NN; ++j) bv[s][j] = V<T>(b(p + s, j));
  }
  const Index mv = m / w * w;
  for (Index i = 0; i < mv; i += w) {
    V<T> acc[NN];
#pragma GCC unroll 4
    for (int j = 0; j < NN; ++j) acc[j] = V<T>::load_unaligned(tmp + j * m + i);
#pragma GCC unroll 8
    for (int s = 0; s < P; ++s) {
      if (i % (64 / sizeof(T)) == 0) __builtin_prefetch(rows[s] + i + P * a.cs);
      const V<T> av = NN > 1 ? load_once(rows[s] + i) : V<T>::load_unaligned(rows[s] + i);
#pragma GCC unroll 4
      for (int j = 0; j < NN; ++j) acc[j] = xsimd::fma(av, bv[s][j], acc[j]);
    }
#pragma GCC unroll 4
    for (int j = 0; j < NN; ++j) acc[j].store_unaligned(tmp + j * m + i);
  }
  // The last m % w rows, while their stretch of these rows of A is in L1.
  for (Index i = mv; i < m; ++i)
    for (int j = 0; j < NN; ++j)
      for (int s = 0; s < P; ++s) tmp[j * m + i] += rows[s][i] * b(p + s, j);
}

// small_n_axpy for an m wider than one register block, which would have to walk A in strided
// column slabs: every k-step reads its whole row of A in order instead, P rows per pass.
template <class T, int NN>
void axpy_stream(Index m, Index k, View<T> a, View<T> b, T* tmp) {
  constexpr int P = NN == 1 ? 8 : (NN == 2 ? 4 : 2);
  std::fill(tmp, tmp + NN * m, T(0));
  Index p = 0;
  for (; p + P <= k; p += P) axpy_rows<T, NN, P>(m, p, a, b, tmp);
  for (; p < k; ++p) axpy_rows<T, NN, 1>(m, p, a, b, tmp);
}

// small_n_axpy in register blocks of IB batches, the last m % w rows one at a time. k is walked in
// chunks whose slab of A (48 KB) is still in L1/L2 when the next block or the single rows pass
// over it, so a tall A^T is read from memory once.
template <class T, int NN, int IB>
void axpy_slabs(Index m, Index k, View<T> a, View<T> b, T* tmp) {
  constexpr Index w = simd::width<T>;
  constexpr Index slab_bytes = 48 * 1024;
  const Index chunk =
      std::max<Index>(16, slab_bytes / (std::max<Index>(m, 1) * static_cast<Index>(sizeof(T))));
  const Index mv = m / w * w;
  for (Index p0 = 0; p0 < k; p0 += chunk) {
    const Index p1 = std::min(k, p0 + chunk);
    const bool first = p0 == 0;
    Index i = 0;
    for (; i + IB * w <= mv; i += IB * w) axpy_block<T, NN, IB>(i, p0, p1, a, b, tmp, m, first);
    for (; i < mv; i += w) axpy_block<T, NN, 1>(i, p0, p1, a, b, tmp, m, first);
    for (; i < m; ++i)
      for (int j = 0; j < NN; ++j) {
        T s = first ? T(0) : tmp[j * m + i];
        for (Index p = p0; p < p1; ++p) s += a(i, p) * b(p, j);
        tmp[j * m + i] = s;
      }
  }
}

// n <= 4 with op(A) columns contiguous (A transposed): vectorise over rows of C, summing into
// tmp[m x NN] (column-major). When one register block (as many batches as fit next to their
// operands) covers m, its sums stay in registers for the whole of k; a wider m streams A row by
// row instead. For n >= 3 only a few k-steps share each round trip of the sums through tmp, which
// pays off only for a wide m (the bound of 16 batches is from bench/results/gemm_tuning.md).
// Either way each element takes its k-steps in order and the rows m % w past the last whole batch
// (the same rows whichever thread has them) go their own way, so where a thread's rows start does
// not change the result.
template <class T, int NN>
void small_n_axpy(Index m, Index k, View<T> a, View<T> b, Out<T> c, bool accumulate, T* tmp) {
  constexpr Index w = simd::width<T>;
  constexpr int ib = NN == 1 ? 8 : (NN == 2 ? 4 : (NN == 3 ? 3 : 2));
  const Index mv = m / w * w;
  const bool one_block = mv == ib * w || mv <= w;
  if (!one_block && (NN <= 2 || mv >= 16 * w))
    axpy_stream<T, NN>(m, k, a, b, tmp);
  else
    axpy_slabs<T, NN, ib>(m, k, a, b, tmp);
  for (int j = 0; j < NN; ++j)
    for (Index i = 0; i < m; ++i) put(c(i, j), tmp[j * m + i], accumulate);
}

// k <= 4: each row of C is a combination of K rows of op(B), given packed in bp[K x ldp] and
// zero-padded to a whole number of batches. No k loop and no packing of A: the cost is writing C,
// so RB rows share each load of B and the loop does little but store. epi is applied to the
// whole batches of each row, not to a last partial one.
template <class T, int K, int RB, class Epi = Plain>
void small_k_rows(Index i0, Index n, View<T> a, const T* bp, Index ldp, T* c, Index ldc,
                  bool accumulate, const Epi& epi = {}) {
  constexpr Index w = simd::width<T>;
  V<T> ai[RB][K];
#pragma GCC unroll 4
  for (int r = 0; r < RB; ++r)
#pragma GCC unroll 4
    for (int p = 0; p < K; ++p) ai[r][p] = V<T>(a(i0 + r, p));
  auto rows_at = [&](Index j, V<T>* out) {
    V<T> bv[K];
#pragma GCC unroll 4
    for (int p = 0; p < K; ++p) bv[p] = V<T>::load_aligned(bp + p * ldp + j);
#pragma GCC unroll 4
    for (int r = 0; r < RB; ++r) {
      out[r] = ai[r][0] * bv[0];
#pragma GCC unroll 4
      for (int p = 1; p < K; ++p) out[r] = xsimd::fma(ai[r][p], bv[p], out[r]);
    }
  };
  T* c0 = c + i0 * ldc;
  const Index nv = n / w * w;
  Index j = 0;
  for (; j < nv; j += w) {
    V<T> v[RB];
    rows_at(j, v);
#pragma GCC unroll 4
    for (int r = 0; r < RB; ++r) {
      if (accumulate) v[r] += V<T>::load_unaligned(c0 + r * ldc + j);
      epi(v[r], j).store_unaligned(c0 + r * ldc + j);
    }
  }
  if (j < n) {
    V<T> v[RB];
    rows_at(j, v);
    for (int r = 0; r < RB; ++r) {
      alignas(64) T buf[w];
      v[r].store_aligned(buf);
      for (Index t = 0; j + t < n; ++t) put(c0[r * ldc + j + t], buf[t], accumulate);
    }
  }
}

template <class T, int K, class Epi = Plain>
void small_k(Index m, Index n, View<T> a, const T* bp, Index ldp, T* c, Index ldc, bool accumulate,
             const Epi& epi = {}) {
  constexpr int rb = K <= 2 ? 4 : 2;
  Index i = 0;
  for (; i + rb <= m; i += rb) small_k_rows<T, K, rb>(i, n, a, bp, ldp, c, ldc, accumulate, epi);
  for (; i < m; ++i) small_k_rows<T, K, 1>(i, n, a, bp, ldp, c, ldc, accumulate, epi);
}

}  // namespace flowgrad::FLOWGRAD_ISA_NS::gemm_detail
