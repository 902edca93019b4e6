#pragma once
// SIMD loop helpers shared by the kernel files. Not installed: xsimd stays out of public headers.
#pragma GCC diagnostic push
// g++ 12 warns falsely from avx512fintrin.h under -march=native; see design.md §10.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <xsimd/xsimd.hpp>
#pragma GCC diagnostic pop

#include <algorithm>
#include <cstddef>

#include "tensor/shape.hpp"

namespace flowgrad::simd {

template <class T>
using batch = xsimd::batch<T>;

template <class T>
inline constexpr Index width = static_cast<Index>(batch<T>::size);

// out[i] = f(in0[i], in1[i], ...) over n elements, f taking and returning batches. The tail runs
// through the same f on a zero-padded copy, so body and tail give bit-identical results.
template <class T, class F, class... In>
void zip(Index n, T* out, F f, const In*... in) {
  constexpr Index w = width<T>;
  Index i = 0;
  for (; i + w <= n; i += w) f(batch<T>::load_unaligned(in + i)...).store_unaligned(out + i);
  if (i < n) {
    const auto rest = static_cast<std::size_t>(n - i);
    auto padded = [&](const T* p) {
      alignas(64) T buf[w] = {};
      std::copy(p + i, p + i + static_cast<Index>(rest), buf);
      return batch<T>::load_aligned(buf);
    };
    alignas(64) T res[w];
    f(padded(in)...).store_aligned(res);
    std::copy(res, res + rest, out + i);
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

}  // namespace flowgrad::simd
