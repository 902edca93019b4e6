// Elementwise kernels: the unary ops run their rules (tensor/detail/unary_rules.hpp) over a tensor,
// and the broadcasting binary ops. Compiled once per ISA; the ops' names and broadcast shapes are
// in tensor/op_names.cpp.
#include "flowgrad/tensor/detail/isa_prelude.hpp"

#include "flowgrad/tensor/detail/isa_kernels.hpp"
#include "flowgrad/tensor/detail/simd.hpp"
#include "flowgrad/tensor/detail/unary_rules.hpp"

namespace flowgrad::FLOWGRAD_ISA_NS {

namespace {

template <class T>
using B = simd::batch<T>;

void check_same(const char* op, const Shape& a, const Shape& b) {
  if (!(a == b))
    throw std::invalid_argument(std::string(op) + ": shapes " + a.str() + " and " + b.str() +
                                " differ");
}

Index grain(bool cheap) { return cheap ? simd::kGrainCheap : simd::kGrainMath; }

// leaky_relu's derivative is read from its output, which needs a monotone function.
void check_leaky_slope(double slope) {
  if (!(slope >= 0))
    throw std::invalid_argument(
        "leaky_relu: negative slope " + std::to_string(slope) +
        " (its derivative is read from the output, which needs slope >= 0)");
}

}  // namespace

template <Scalar T>
void unary(Unary f, const Tensor<T>& x, Tensor<T>& y, T p) {
  if (f == Unary::leaky_relu) check_leaky_slope(p);
  y.resize(x.shape());
  detail::with_unary(f, [&](auto rule) {
    using R = typename decltype(rule)::type;
    simd::zip_mt(
        grain(R::cheap(p)), x.numel(), y.data(), [p](B<T> v) { return R::forward(v, p); },
        x.data());
  });
}

template <Scalar T>
void unary_backward(Unary f, const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& gy,
                    Tensor<T>& gx, T p) {
  check_same(to_string(f), x.shape(), y.shape());
  check_same(to_string(f), x.shape(), gy.shape());
  check_same(to_string(f), x.shape(), gx.shape());
  if (f == Unary::leaky_relu) check_leaky_slope(p);
  const Index n = x.numel();
  T* g = gx.data();
  detail::with_unary(f, [&](auto rule) {
    using R = typename decltype(rule)::type;
    // gx + gy * f'(x), f' read from y where the rule has it so: the same derivative as the fused
    // kernels take for an activation.
    if constexpr (detail::FromOutput<R>)
      simd::zip_mt(
          grain(R::cheap_backward(p)), n, g,
          [p](B<T> a, B<T> d, B<T> v) { return xsimd::fma(d, R::derivative_from_output(v, p), a); },
          g, gy.data(), y.data());
    else
      simd::zip_mt(
          grain(R::cheap_backward(p)), n, g,
          [p](B<T> a, B<T> d, B<T> u) { return xsimd::fma(d, R::derivative(u, p), a); }, g,
          gy.data(), x.data());
  });
}

namespace {

// out = f(a, b) broadcast, one batch of the flat output at a time, each operand's lanes gathered
// by row and column. Single-threaded: it serves tensors of a few columns.
template <class T, class F>
void gathered(const Tensor<T>& a, const Tensor<T>& b, Tensor<T>& out, F f) {
  constexpr Index w = simd::width<T>;
  const Index n = out.cols(), total = out.numel();
  auto lanes = [&](const Tensor<T>& t, Index e) {
    const Index rs = t.rows() == 1 ? 0 : t.cols(), cs = t.cols() == 1 ? 0 : 1;
    alignas(64) T buf[w] = {};
    for (Index k = 0; k < w && e + k < total; ++k)
      buf[k] = t.data()[(e + k) / n * rs + (e + k) % n * cs];
    return B<T>::load_aligned(buf);
  };
  Index e = 0;
  for (; e + w <= total; e += w) f(lanes(a, e), lanes(b, e)).store_unaligned(out.data() + e);
  if (e < total) {
    alignas(64) T res[w];
    f(lanes(a, e), lanes(b, e)).store_aligned(res);
    std::copy(res, res + (total - e), out.data() + e);
  }
}

template <class T, class F>
void broadcast_rows(const Tensor<T>& a, const Tensor<T>& b, Tensor<T>& out, F f) {
  const Index m = out.rows(), n = out.cols();
  const bool a_row = a.rows() == 1, b_row = b.rows() == 1;
  const bool a_bc = a.cols() == 1 && n > 1, b_bc = b.cols() == 1 && n > 1;
  if (a.rows() == m && b.rows() == m && !a_bc && !b_bc) {
    // No broadcast: one flat loop, rather than one per row (a [m, 1] column would be m loops of 1).
    return simd::zip_mt(simd::kGrainCheap, m * n, out.data(), f, a.data(), b.data());
  }
  // A single element, or a row of a 2-D flow's width against full rows: still one flat loop.
  if (a.numel() == 1 || b.numel() == 1 ||
      (a_row != b_row && !a_bc && !b_bc && simd::rows_tile<T>(n))) {
    auto spread = [&](const Tensor<T>& t) {
      return t.numel() == 1 ? B<T>(t[0]) : simd::repeated(t.data(), n);
    };
    if (a.rows() != m || a_bc) {
      const B<T> s = spread(a);
      return simd::zip_mt(
          simd::kGrainCheap, m * n, out.data(), [&](B<T> y) { return f(s, y); }, b.data());
    }
    const B<T> s = spread(b);
    return simd::zip_mt(
        simd::kGrainCheap, m * n, out.data(), [&](B<T> x) { return f(x, s); }, a.data());
  }
  // Any other broadcast of narrow rows (a column against a row, a column against full rows): the
  // operands are gathered a batch at a time, which beats one short loop per row.
  if (simd::rows_tile<T>(n)) return gathered(a, b, out, f);
  const int nt = simd::threads_for(m * n, simd::kGrainCheap);
  // Columns [j0, j1) of rows [i0, i1).
  auto run = [&](Index i0, Index i1, Index j0, Index j1) {
    const Index len = j1 - j0;
    for (Index i = i0; i < i1; ++i) {
      const T* pa = a.data() + (a_row ? 0 : i * a.cols());
      const T* pb = b.data() + (b_row ? 0 : i * b.cols());
      T* po = out.data() + i * n + j0;
      if (!a_bc && !b_bc) {
        simd::zip(len, po, f, pa + j0, pb + j0);
      } else if (a_bc && !b_bc) {
        const B<T> s(*pa);
        simd::zip(
            len, po, [&](B<T> y) { return f(s, y); }, pb + j0);
      } else if (!a_bc && b_bc) {
        const B<T> s(*pb);
        simd::zip(
            len, po, [&](B<T> x) { return f(x, s); }, pa + j0);
      } else {
        const B<T> s = f(B<T>(*pa), B<T>(*pb));
        simd::zip(
            len, po, [&](B<T>) { return s; }, po);
      }
    }
  };
  if (nt == 1) return run(0, m, 0, n);
  // Whole rows per thread; a tensor of a few long rows is split along its columns instead.
  if (m >= 4 * nt)
    simd::parallel_for(nt, m, 1, [&](Index i0, Index i1) { run(i0, i1, 0, n); });
  else
    simd::parallel_for(nt, n, simd::width<T>, [&](Index j0, Index j1) { run(0, m, j0, j1); });
}

}  // namespace

template <Scalar T>
void binary(Binary f, const Tensor<T>& a, const Tensor<T>& b, Tensor<T>& out) {
  const Shape s = broadcast_shape(to_string(f), a.shape(), b.shape());
  // Writing into an input is fine only when it already has the output's elements; it then keeps
  // its own shape (a [n] gradient stays [n] rather than becoming [1, n]).
  auto same_elements = [&](const Tensor<T>& t) {
    return t.rows() == s.rows() && t.cols() == s.cols();
  };
  if ((&out == &a && !same_elements(a)) || (&out == &b && !same_elements(b)))
    throw std::invalid_argument(std::string(to_string(f)) + ": output aliases a broadcast input");
  if (&out != &a && &out != &b) out.resize(s);
  switch (f) {
    case Binary::add:
      return broadcast_rows(a, b, out, [](B<T> x, B<T> y) { return x + y; });
    case Binary::sub:
      return broadcast_rows(a, b, out, [](B<T> x, B<T> y) { return x - y; });
    case Binary::mul:
      return broadcast_rows(a, b, out, [](B<T> x, B<T> y) { return x * y; });
    case Binary::div:
      return broadcast_rows(a, b, out, [](B<T> x, B<T> y) { return x / y; });
  }
}

template <Scalar T>
void axpy(T alpha, const Tensor<T>& x, Tensor<T>& acc) {
  check_same("axpy", x.shape(), acc.shape());
  const B<T> al(alpha);
  simd::zip_mt(
      simd::kGrainCheap, x.numel(), acc.data(),
      [&](B<T> a, B<T> v) { return xsimd::fma(al, v, a); }, acc.data(), x.data());
}

template <Scalar T>
void accumulate_reduced(const Tensor<T>& g, Tensor<T>& acc) {
  const Index m = g.rows(), n = g.cols();
  if (acc.numel() == g.numel() && acc.rows() == m) return FLOWGRAD_ISA_NS::axpy(T(1), g, acc);
  // A one-element target is a total even when g is a single column ([B, 1] into a bias of one).
  const bool rows_reduced = acc.rows() == 1 && m != 1;
  const bool cols_reduced = acc.cols() == 1 && (n != 1 || acc.numel() == 1);
  if ((acc.rows() != m && !rows_reduced) || (acc.cols() != n && !cols_reduced))
    throw std::invalid_argument("accumulate_reduced: gradient " + g.shape().str() +
                                " does not reduce to " + acc.shape().str());
  auto hsum = [](B<T> v) { return xsimd::hadd(v); };
  auto plus = [](B<T> x, B<T> y) { return x + y; };
  const int nt = simd::threads_for(m * n, simd::kGrainCheap);
  if (rows_reduced && cols_reduced) {
    // Per-thread partial sums added in thread order: deterministic, but rounded differently from
    // the 1-thread sum.
    acc[0] += simd::parallel_reduce<T>(
        nt, g.numel(), simd::width<T>,
        [&](Index b, Index e) { return simd::reduce(g.data() + b, e - b, T(0), T(0), plus, hsum); },
        [](T x, T y) { return x + y; });
  } else if (cols_reduced) {
    simd::parallel_for(nt, m, 1, [&](Index i0, Index i1) {
      for (Index i = i0; i < i1; ++i) acc[i] += simd::row_sum(g.data() + i * n, n);
    });
  } else if (simd::rows_tile<T>(n)) {
    simd::fold_into(simd::sum_batches(g.data(), m * n), n, acc.data());
  } else {
    // Column sums: split the columns, so that each thread sums its columns in the 1-thread order.
    simd::parallel_for(
        n >= nt * simd::width<T> ? nt : 1, n, simd::width<T>, [&](Index j0, Index j1) {
          for (Index i = 0; i < m; ++i)
            simd::zip(j1 - j0, acc.data() + j0, plus, acc.data() + j0, g.data() + i * n + j0);
        });
  }
}

template void unary(Unary, const Tensor<float>&, Tensor<float>&, float);
template void unary(Unary, const Tensor<double>&, Tensor<double>&, double);
template void unary_backward(Unary, const Tensor<float>&, const Tensor<float>&,
                             const Tensor<float>&, Tensor<float>&, float);
template void unary_backward(Unary, const Tensor<double>&, const Tensor<double>&,
                             const Tensor<double>&, Tensor<double>&, double);
template void binary(Binary, const Tensor<float>&, const Tensor<float>&, Tensor<float>&);
template void binary(Binary, const Tensor<double>&, const Tensor<double>&, Tensor<double>&);
template void axpy(float, const Tensor<float>&, Tensor<float>&);
template void axpy(double, const Tensor<double>&, Tensor<double>&);
template void accumulate_reduced(const Tensor<float>&, Tensor<float>&);
template void accumulate_reduced(const Tensor<double>&, Tensor<double>&);

}  // namespace flowgrad::FLOWGRAD_ISA_NS
