#pragma once
// SIMD loop helpers shared by the kernel files, for the ISA this file is compiled for
// (detail/isa_namespace.hpp). Not installed: xsimd stays out of public headers.
// g++ 12 warns falsely from avx512fintrin.h under -march=native; see docs/design.md §11. clang
// has no such warning, and -Werror turns its "unknown warning group" into an error: g++ only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#if defined(FLOWGRAD_KERNEL_ISA_AVX512)
// xsimd's scalar argument reduction for sin and cos of large arguments is two plain inline
// functions in a header without an include guard, so detail/isa_prelude.hpp cannot read it
// portably ahead of time. Renamed here, the AVX-512 files' copies are their own symbols, which no
// AVX2 caller can reach (tests/isa/leak_check.sh found them under the shared names).
#define __kernel_rem_pio2 isa_avx512_kernel_rem_pio2
#define __ieee754_rem_pio2 isa_avx512_ieee754_rem_pio2
#endif
#include <xsimd/xsimd.hpp>
#if defined(FLOWGRAD_KERNEL_ISA_AVX512)
#undef __kernel_rem_pio2
#undef __ieee754_rem_pio2
#endif
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <type_traits>
#include <utility>

#include "flowgrad/tensor/detail/isa_namespace.hpp"
#include "flowgrad/tensor/detail/pool.hpp"
#include "flowgrad/tensor/isa.hpp"
#include "flowgrad/tensor/shape.hpp"
#include "flowgrad/tensor/threads.hpp"

namespace flowgrad::FLOWGRAD_ISA_NS::simd {

// The xsimd architecture of the batches, named rather than left to xsimd's default (which follows
// the compiler flags), and the Isa it is reported as.
#if defined(FLOWGRAD_KERNEL_ISA_AVX512)
using arch = xsimd::avx512bw;
inline constexpr Isa isa = Isa::avx512;
#elif defined(FLOWGRAD_NATIVE_BUILD)
using arch = xsimd::default_arch;
inline constexpr Isa isa = XSIMD_WITH_AVX512F ? Isa::avx512 : Isa::avx2;
#else
using arch = xsimd::fma3<xsimd::avx2>;
inline constexpr Isa isa = Isa::avx2;
#endif

template <class T>
using batch = xsimd::batch<T, arch>;

template <class T>
inline constexpr Index width = static_cast<Index>(batch<T>::size);

// xsimd's double exp, expm1 and tanh (through exp) turn round(x / ln 2) into an int64 with a
// scalar cast, which is undefined behaviour when x is NaN, infinite or beyond +-2^63 ln 2 (UBSan's
// float-cast-overflow; x86 happens to give INT64_MIN, and xsimd's range selects then hide it).
// These wrappers hand xsimd a double argument clamped to [-1000, 1000], with 0 for NaN, and put
// the NaN back afterwards: exp and expm1 have already saturated at +-1000 (to 0 or -1 below -745,
// to inf above 710) and tanh to +-1, so no result changes. float converts with an intrinsic
// (cvttps2dq), which is defined for every input: as it is.
template <class T, class F>
batch<T> with_int_safe_argument(batch<T> x, F f) {
  if constexpr (std::is_same_v<T, double>) {
    const batch<T> lim(1000.0), zero(0.0);
    const auto nan = xsimd::isnan(x);  // not x != x: xsimd compares ordered, false for NaN
    const batch<T> a =
        xsimd::select(nan, zero, xsimd::select(x < -lim, -lim, xsimd::select(x > lim, lim, x)));
    return xsimd::select(nan, x, f(a));
  } else {
    return f(x);
  }
}
template <class T>
batch<T> exp(batch<T> x) {
  return with_int_safe_argument(x, [](batch<T> a) { return xsimd::exp(a); });
}
template <class T>
batch<T> expm1(batch<T> x) {
  return with_int_safe_argument(x, [](batch<T> a) { return xsimd::expm1(a); });
}
template <class T>
batch<T> tanh(batch<T> x) {
  return with_int_safe_argument(x, [](batch<T> a) { return xsimd::tanh(a); });
}

// x^p for a scalar exponent. xsimd's pow converts p, and the exponent of its result, to an int64,
// which is undefined behaviour for NaN or infinite x and for |p| beyond 2^63 (clang's UBSan finds
// it), and it gives 0 for 0^p with p < 0. Here xsimd sees only finite |x| > 0 and |p| < 2^52 (so
// that |p log2 x| < 2^63 too) and the rest is decided here, as std::pow does: NaN stays NaN;
// +-inf^p and 0^p are inf, 0 or 1 by the sign of p; an exponent past 2^52 gives 0, 1 or inf by
// whether |x| is below, at or above 1; a negative x has a power only for an integer p (its sign
// that of x for an odd one) and is NaN otherwise.
template <class T>
batch<T> pow(batch<T> x, T p) {
  const batch<T> zero(T(0)), one(T(1)), inf(std::numeric_limits<T>::infinity());
  const batch<T> ax = xsimd::abs(x);
  const bool integer = std::floor(p) == p, odd = integer && std::fmod(p, T(2)) != T(0);
  batch<T> magnitude;
  if (std::abs(p) >= T(4503599627370496.0)) {  // 2^52
    const batch<T> above = p > 0 ? inf : zero, below = p > 0 ? zero : inf;
    magnitude = xsimd::select(ax > one, above, xsimd::select(ax < one, below, one));
  } else {
    const auto is_inf = ax == inf, is_zero = ax == zero;
    const batch<T> safe = xsimd::select(xsimd::isnan(ax) || is_inf || is_zero, one, ax);
    const batch<T> y = xsimd::pow(safe, batch<T>(p));
    const batch<T> at_inf = p > 0 ? inf : p < 0 ? zero : one;
    const batch<T> at_zero = p > 0 ? zero : p < 0 ? inf : one;
    magnitude = xsimd::select(is_inf, at_inf, xsimd::select(is_zero, at_zero, y));
  }
  const batch<T> if_negative =
      integer ? (odd ? -magnitude : magnitude) : batch<T>(std::numeric_limits<T>::quiet_NaN());
  return xsimd::select(xsimd::isnan(x), x, xsimd::select(x < zero, if_negative, magnitude));
}

// out[i] = f(in0[i], in1[i], ...) over n elements, f taking and returning batches. The tail runs
// through the same f on a zero-padded copy, so body and tail give bit-identical results.
template <class T, class F, class... In>
void zip(Index n, T* out, F f, const In*... in) {
  constexpr Index w = width<T>;
  Index i = 0;
  for (; i + w <= n; i += w) f(batch<T>::load_unaligned(in + i)...).store_unaligned(out + i);
  if (i < n) {
    // Element loops with a fixed bound: a copy of `rest` elements compiles to a memmove call,
    // which costs more than the batch when zip runs once per row of a narrow layer.
    const Index rest = n - i;
    auto padded = [&](const T* p) {
      alignas(64) T buf[w] = {};
      for (Index k = 0; k < w; ++k)
        if (k < rest) buf[k] = p[i + k];
      return batch<T>::load_aligned(buf);
    };
    alignas(64) T res[w];
    f(padded(in)...).store_aligned(res);
    for (Index k = 0; k < w; ++k)
      if (k < rest) out[i + k] = res[k];
  }
}

// Reduction of x[0..n): accumulators start at `init`, take acc = op(acc, x) on batches, and hop
// folds the final batch to a scalar. The tail is padded with `pad`, a value op ignores. The two
// accumulators are merged with op itself, so op must be a plain associative, commutative operation
// on accumulators (a sum, a max), not one that transforms its second argument.
template <class T, class Op, class HOp>
T reduce(const T* x, Index n, T init, T pad, Op op, HOp hop) {
  constexpr Index w = width<T>;
  batch<T> acc0(init), acc1(init);
  Index i = 0;
  for (; i + 2 * w <= n; i += 2 * w) {
    acc0 = op(acc0, batch<T>::load_unaligned(x + i));
    acc1 = op(acc1, batch<T>::load_unaligned(x + i + w));
  }
  if (i + w <= n) {
    acc0 = op(acc0, batch<T>::load_unaligned(x + i));
    i += w;
  }
  if (i < n) {
    alignas(64) T buf[w];
    std::fill(buf, buf + w, pad);
    std::copy(x + i, x + n, buf);
    acc1 = op(acc1, batch<T>::load_aligned(buf));
  }
  return hop(op(acc0, acc1));
}

// --- Rows narrower than a batch ------------------------------------------------------------------
// A 2-D flow is full of [B, 1] and [B, 2] tensors. A loop per row would cost more than the work, so
// when the row width n divides the batch width, rows are taken several at a time in one flat pass:
// every batch then starts on a row boundary, and lane k always holds column k % n.
template <class T>
bool rows_tile(Index n) {
  return n < width<T> && width<T> % n == 0;
}

// A batch holding the row [0, n) once per n lanes.
template <class T>
batch<T> repeated(const T* row, Index n) {
  alignas(64) T buf[width<T>];
  for (Index k = 0; k < width<T>; ++k) buf[k] = row[k % n];
  return batch<T>::load_aligned(buf);
}

// Adds the lanes of a batch of repeated rows into one row of n.
template <class T>
void fold_into(batch<T> acc, Index n, T* row) {
  alignas(64) T buf[width<T>];
  acc.store_aligned(buf);
  for (Index k = 0; k < width<T>; ++k) row[k % n] += buf[k];
}

// Sum of the batches of x[0..count), the tail zero-padded: with rows_tile(n) and count = m * n,
// fold_into() of the result gives the column sums.
template <class T>
batch<T> sum_batches(const T* x, Index count) {
  constexpr Index w = width<T>;
  batch<T> acc0(T(0)), acc1(T(0));
  Index i = 0;
  for (; i + 2 * w <= count; i += 2 * w) {
    acc0 += batch<T>::load_unaligned(x + i);
    acc1 += batch<T>::load_unaligned(x + i + w);
  }
  if (i + w <= count) {
    acc0 += batch<T>::load_unaligned(x + i);
    i += w;
  }
  if (i < count) {
    alignas(64) T buf[w] = {};
    std::copy(x + i, x + count, buf);
    acc1 += batch<T>::load_aligned(buf);
  }
  return acc0 + acc1;
}

// Sum of x[0..n). A row narrower than a batch is summed in a plain loop: padding it into a batch
// and adding across lanes would cost several times the additions.
template <class T>
T row_sum(const T* x, Index n) {
  if (n < width<T>) {
    T s = 0;
    for (Index i = 0; i < n; ++i) s += x[i];
    return s;
  }
  return reduce(
      x, n, T(0), T(0), [](batch<T> a, batch<T> b) { return a + b; },
      [](batch<T> v) { return xsimd::hadd(v); });
}

// --- Intra-op parallelism ------------------------------------------------------------------------
// A kernel asks threads_for() how many threads its job is worth, and runs on the calling thread,
// without entering a parallel region, when the answer is 1: at num_threads() == 1 every kernel
// takes exactly its single-threaded path, and small jobs pay nothing for threading.

// Threads for `work` units when each thread should get at least `grain` of them; 1 inside a chunk
// of a parallel region, whose threads are all busy already.
inline int threads_for(Index work, Index grain) {
  const int nt = num_threads();
  if (nt <= 1 || work < 2 * grain || ::flowgrad::detail::in_chunk()) return 1;
  return static_cast<int>(std::min<Index>(nt, work / grain));
}

// Part `t` of `parts` of [0, n): contiguous, balanced, every boundary but n a multiple of `align`.
inline std::pair<Index, Index> chunk(Index n, Index align, int t, int parts) {
  const Index units = (n + align - 1) / align;
  return {std::min(n, units * t / parts * align), std::min(n, units * (t + 1) / parts * align)};
}

// body(begin, end) over [0, n) split into nt chunks (see chunk()), run by the pool of
// tensor/pool.cpp; nt == 1 calls body(0, n) on the calling thread. Which thread runs a chunk
// varies from call to call, and must not matter.
template <class F>
void parallel_for(int nt, Index n, Index align, F&& body) {
  if (nt <= 1) {
    body(Index(0), n);
    return;
  }
  struct Job {
    F& body;
    Index n, align;
    int parts;
  } job{body, n, align, nt};
  ::flowgrad::detail::run_chunks(
      nt, nt,
      [](void* p, int c) {
        Job& j = *static_cast<Job*>(p);
        const auto [b, e] = chunk(j.n, j.align, c, j.parts);
        if (b < e) j.body(b, e);
      },
      &job);
}

// body(i) for every i in [0, count), each one a chunk that whichever of nt threads is free claims
// next: when one thread starts late (a helper waking up), the others take more of the items. For
// items that cost about the same and are fixed by the data alone (an MLP's blocks of rows), so
// that which thread runs an item does not matter.
template <class F>
void parallel_for_each(int nt, Index count, F&& body) {
  if (nt <= 1 || count <= 1) {
    for (Index i = 0; i < count; ++i) body(i);
    return;
  }
  ::flowgrad::detail::run_chunks(
      nt, static_cast<int>(count),
      [](void* p, int c) { (*static_cast<std::remove_reference_t<F>*>(p))(Index(c)); }, &body);
}

// A reduction over [0, n): part(begin, end) reduces each of nt chunks and combine() folds the
// partial results in chunk order, so the result does not depend on thread timing (it does on the
// thread count: the rounding of a sum changes with where the chunks start). nt == 1 returns
// part(0, n) from the calling thread.
template <class T, class Part, class Combine>
T parallel_reduce(int nt, Index n, Index align, Part&& part, Combine&& combine) {
  if (nt <= 1) return part(Index(0), n);
  constexpr int kMaxParts = 64;
  nt = std::min(nt, kMaxParts);
  T partial[kMaxParts];
  struct Job {
    Part& part;
    T* partial;
    Index n, align;
    int parts;
  } job{part, partial, n, align, nt};
  ::flowgrad::detail::run_chunks(
      nt, nt,
      [](void* p, int c) {
        Job& j = *static_cast<Job*>(p);
        const auto [b, e] = chunk(j.n, j.align, c, j.parts);
        j.partial[c] = j.part(b, e);
      },
      &job);
  T result = partial[0];
  for (int t = 1; t < nt; ++t) result = combine(result, partial[t]);
  return result;
}

// Minimum elements per thread before an elementwise loop or a reduction is split, measured with
// bench/bench_threads.cpp on 2 Zen 4 cores, where a fork/join costs about 1 us. A few arithmetic
// operations per element are memory-bound (relu over 64K floats: ~5 us) and need a large share;
// transcendental functions (tanh: ~1.2 elements/ns) split much earlier.
inline constexpr Index kGrainCheap = Index(1) << 15;
inline constexpr Index kGrainMath = Index(1) << 12;

// zip() split into SIMD-aligned chunks when n is worth `grain` elements per thread or more. Every
// element is computed by the same f on the same inputs, so the result is bit-identical to zip().
template <class T, class F, class... In>
void zip_mt(Index grain, Index n, T* out, F f, const In*... in) {
  parallel_for(threads_for(n, grain), n, width<T>,
               [&](Index b, Index e) { zip(e - b, out + b, f, (in + b)...); });
}

}  // namespace flowgrad::FLOWGRAD_ISA_NS::simd

// Files compiled once (the autodiff ops, the optimizer) reach the helpers as flowgrad::simd, which
// is the portable build's AVX2 copy there.
namespace flowgrad {
namespace simd = FLOWGRAD_ISA_NS::simd;
}
