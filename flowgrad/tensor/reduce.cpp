// Reductions: sum, max and a stable logsumexp, over everything, over rows or over columns.
// Compiled once per ISA; mean() is sum() scaled, in tensor/dispatch.cpp.
#include "flowgrad/tensor/detail/isa_prelude.hpp"

#include "flowgrad/tensor/detail/isa_kernels.hpp"
#include "flowgrad/tensor/detail/simd.hpp"

namespace flowgrad::FLOWGRAD_ISA_NS {

namespace {

template <class T>
using B = simd::batch<T>;

void check_dim(const char* op, int dim, const Shape& s) {
  if (s.rank() > 2) throw std::invalid_argument(std::string(op) + ": rank above 2 in " + s.str());
  if (dim != 0 && dim != 1)
    throw std::invalid_argument(std::string(op) +
                                ": dim must be 0 (over rows) or 1 (over columns), got " +
                                std::to_string(dim));
}

template <class T>
T row_max(const T* x, Index n) {
  const T lowest = -std::numeric_limits<T>::infinity();
  return simd::reduce(
      x, n, lowest, lowest, [](B<T> a, B<T> b) { return xsimd::max(a, b); },
      [](B<T> v) {
        alignas(64) T buf[simd::width<T>];
        v.store_aligned(buf);
        T m = buf[0];
        for (T e : buf) m = e > m ? e : m;
        return m;
      });
}

// sum(exp(x - shift)). The tail is padded with -inf, whose exp is 0.
template <class T>
T sum_exp_shifted(const T* x, Index n, T shift) {
  constexpr Index w = simd::width<T>;
  const B<T> sh(shift);
  B<T> acc(T(0));
  Index i = 0;
  for (; i + w <= n; i += w) acc += simd::exp(B<T>::load_unaligned(x + i) - sh);
  if (i < n) {
    alignas(64) T buf[w];
    std::fill(buf, buf + w, -std::numeric_limits<T>::infinity());
    std::copy(x + i, x + n, buf);
    acc += simd::exp(B<T>::load_aligned(buf) - sh);
  }
  return xsimd::hadd(acc);
}

// Over everything: per-thread partial results folded in thread order (see simd::parallel_reduce).
// Exact for max; a sum is rounded differently from the 1-thread sum when split.
template <class T>
T sum_all(const T* x, Index n) {
  return simd::parallel_reduce<T>(
      simd::threads_for(n, simd::kGrainCheap), n, simd::width<T>,
      [x](Index b, Index e) { return simd::row_sum(x + b, e - b); },
      [](T a, T b) { return a + b; });
}

template <class T>
T max_all(const T* x, Index n) {
  return simd::parallel_reduce<T>(
      simd::threads_for(n, simd::kGrainCheap), n, simd::width<T>,
      [x](Index b, Index e) { return row_max(x + b, e - b); },
      [](T a, T b) { return a > b ? a : b; });
}

// f(i0, i1) over rows [i0, i1) of an m x n tensor, split between threads by whole rows when the
// m * n elements are worth it: each row is reduced exactly as on one thread.
template <class F>
void over_rows(Index m, Index n, Index grain, F&& f) {
  simd::parallel_for(simd::threads_for(m * n, grain), m, 1, f);
}

// f(j0, j1) over columns [j0, j1) of an m x n tensor, split between threads when there are enough
// elements and at least a batch of columns per thread; column sums then keep the 1-thread order.
template <class F>
void over_cols(Index m, Index n, Index align, Index grain, F&& f) {
  const int nt = simd::threads_for(m * n, grain);
  simd::parallel_for(n >= nt * align ? nt : 1, n, align, f);
}

template <class T>
void require_nonempty(const char* op, const Tensor<T>& x) {
  if (x.empty()) throw std::invalid_argument(std::string(op) + ": empty tensor " + x.shape().str());
}

}  // namespace

template <Scalar T>
void sum(const Tensor<T>& x, Tensor<T>& out) {
  const T s = sum_all(x.data(), x.numel());
  out.resize(Shape{1, 1});
  out[0] = s;
}

template <Scalar T>
void sum_dim(const Tensor<T>& x, int dim, Tensor<T>& out) {
  check_dim("sum", dim, x.shape());
  const Index m = x.rows(), n = x.cols();
  if (&out == &x) throw std::invalid_argument("sum: output aliases the input");
  if (dim == 1) {
    out.resize(Shape{m, 1});
    over_rows(m, n, simd::kGrainCheap, [&](Index i0, Index i1) {
      for (Index i = i0; i < i1; ++i) out[i] = simd::row_sum(x.data() + i * n, n);
    });
  } else {
    out.resize(Shape{1, n});
    out.fill(T(0));
    if (simd::rows_tile<T>(n))
      return simd::fold_into(simd::sum_batches(x.data(), m * n), n, out.data());
    over_cols(m, n, simd::width<T>, simd::kGrainCheap, [&](Index j0, Index j1) {
      T* o = out.data() + j0;
      for (Index i = 0; i < m; ++i)
        simd::zip(
            j1 - j0, o, [](B<T> a, B<T> b) { return a + b; }, o, x.data() + i * n + j0);
    });
  }
}

template <Scalar T>
void max(const Tensor<T>& x, Tensor<T>& out) {
  require_nonempty("max", x);
  const T m = max_all(x.data(), x.numel());
  out.resize(Shape{1, 1});
  out[0] = m;
}

template <Scalar T>
void max_dim(const Tensor<T>& x, int dim, Tensor<T>& out) {
  check_dim("max", dim, x.shape());
  require_nonempty("max", x);
  if (&out == &x) throw std::invalid_argument("max: output aliases the input");
  const Index m = x.rows(), n = x.cols();
  if (dim == 1) {
    out.resize(Shape{m, 1});
    over_rows(m, n, simd::kGrainCheap, [&](Index i0, Index i1) {
      for (Index i = i0; i < i1; ++i) out[i] = row_max(x.data() + i * n, n);
    });
  } else {
    out.resize(Shape{1, n});
    out.fill(-std::numeric_limits<T>::infinity());
    over_cols(m, n, simd::width<T>, simd::kGrainCheap, [&](Index j0, Index j1) {
      T* o = out.data() + j0;
      for (Index i = 0; i < m; ++i)
        simd::zip(
            j1 - j0, o, [](B<T> a, B<T> b) { return xsimd::max(a, b); }, o, x.data() + i * n + j0);
    });
  }
}

// logsumexp = m + log(sum exp(x - m)) with m the maximum, so no term overflows. When m is infinite
// the shift would give inf - inf, so the slice's value is m itself.
template <Scalar T>
void logsumexp(const Tensor<T>& x, int dim, Tensor<T>& out) {
  check_dim("logsumexp", dim, x.shape());
  require_nonempty("logsumexp", x);
  if (&out == &x) throw std::invalid_argument("logsumexp: output aliases the input");
  const Index m = x.rows(), n = x.cols();
  if (dim == 1) {
    out.resize(Shape{m, 1});
    over_rows(m, n, simd::kGrainMath, [&](Index i0, Index i1) {
      for (Index i = i0; i < i1; ++i) {
        const T* row = x.data() + i * n;
        const T mx = row_max(row, n);
        if (std::isinf(mx)) {
          out[i] = mx;
          continue;
        }
        const T s = sum_exp_shifted(row, n, mx);
        out[i] = mx + std::log(s);
      }
    });
  } else {
    out.resize(Shape{1, n});
    over_cols(m, n, 1, simd::kGrainMath, [&](Index j0, Index j1) {
      for (Index j = j0; j < j1; ++j) {
        T mx = -std::numeric_limits<T>::infinity();
        for (Index i = 0; i < m; ++i) mx = std::max(mx, x(i, j));
        if (std::isinf(mx)) {
          out[j] = mx;
          continue;
        }
        T s = 0;
        for (Index i = 0; i < m; ++i) s += std::exp(x(i, j) - mx);
        out[j] = mx + std::log(s);
      }
    });
  }
}

template <Scalar T>
bool all_finite(const Tensor<T>& x) {
  // v - v is 0 for a finite v and NaN for an infinite or NaN one, and a NaN survives the sum.
  constexpr Index w = simd::width<T>;
  const Index n = x.numel();
  const T* p = x.data();
  B<T> acc(T(0));
  Index i = 0;
  for (; i + w <= n; i += w) {
    const B<T> v = B<T>::load_unaligned(p + i);
    acc += v - v;
  }
  for (; i < n; ++i)
    if (!std::isfinite(p[i])) return false;
  return xsimd::all(acc == B<T>(T(0)));
}

#define FLOWGRAD_INSTANTIATE(T)                             \
  template bool all_finite(const Tensor<T>&);               \
  template void sum(const Tensor<T>&, Tensor<T>&);          \
  template void sum_dim(const Tensor<T>&, int, Tensor<T>&); \
  template void max(const Tensor<T>&, Tensor<T>&);          \
  template void max_dim(const Tensor<T>&, int, Tensor<T>&); \
  template void logsumexp(const Tensor<T>&, int, Tensor<T>&);
FLOWGRAD_INSTANTIATE(float)
FLOWGRAD_INSTANTIATE(double)
#undef FLOWGRAD_INSTANTIATE

}  // namespace flowgrad::FLOWGRAD_ISA_NS
