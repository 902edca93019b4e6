// The fused bias + activation kernels, running the activations' rules
// (tensor/detail/unary_rules.hpp) with the derivative from the output. Compiled once per ISA.
#include "flowgrad/tensor/detail/isa_prelude.hpp"

#include "flowgrad/tensor/detail/isa_kernels.hpp"
#include "flowgrad/tensor/detail/simd.hpp"
#include "flowgrad/tensor/detail/transpose.hpp"
#include "flowgrad/tensor/detail/unary_rules.hpp"

namespace flowgrad::FLOWGRAD_ISA_NS {

namespace {

template <class T>
using B = simd::batch<T>;

using detail::with_activation;

// Elements per thread before a pass is split, from the activation's forward cost; the backward
// pass takes the same grain.
Index grain(Activation act) {
  return with_activation(act, [](auto a) {
    return decltype(a)::type::cheap(0) ? simd::kGrainCheap : simd::kGrainMath;
  });
}

// Scratch for activation_backward's per-block bias partials; it only grows, so steady-state
// training steps allocate nothing.
template <class T>
T* bias_partials(Index count) {
  thread_local std::vector<T> buffer;
  if (static_cast<Index>(buffer.size()) < count) buffer.resize(static_cast<std::size_t>(count));
  return buffer.data();
}

void check(const char* op, const Shape& y, const Shape& other, const char* what) {
  if (y.rank() > 2 || other.rows() != y.rows() || other.cols() != y.cols())
    throw std::invalid_argument(std::string(op) + ": " + what + " " + other.str() +
                                " does not match the output " + y.str());
}

// z = z_of(y, g) on NB batches of columns of every row (rows `ld` apart), and the column sums
// of z, kept in registers across the rows and then added to sums.
constexpr int kSweep = 8;

// Widest layer whose bias bias_activation_block tiles on the stack for its flat pass.
constexpr Index kFlatBiasCols = 512;
template <int NB, class T, class Z>
void sweep_columns(const T* y, const T* g, T* z, Index rows, Index ld, Z z_of, T* sums) {
  constexpr Index w = simd::width<T>;
  B<T> acc[NB];
#pragma GCC unroll 8
  for (int q = 0; q < NB; ++q) acc[q] = B<T>(T(0));
  for (Index i = 0; i < rows; ++i) {
    const Index o = i * ld;
#pragma GCC unroll 8
    for (int q = 0; q < NB; ++q) {
      const B<T> v = z_of(B<T>::load_unaligned(y + o + q * w), B<T>::load_unaligned(g + o + q * w));
      v.store_unaligned(z + o + q * w);
      acc[q] += v;
    }
  }
#pragma GCC unroll 8
  for (int q = 0; q < NB; ++q)
    (B<T>::load_unaligned(sums + q * w) + acc[q]).store_unaligned(sums + q * w);
}

// sweep_columns<nb> for a run-time nb in [1, kSweep]: one instantiation per count.
template <class T, class Z, int... I>
void sweep_columns_n(Index nb, std::integer_sequence<int, I...>, const T* y, const T* g, T* z,
                     Index rows, Index ld, Z z_of, T* sums) {
  (void)((nb == I + 1 && (sweep_columns<I + 1>(y, g, z, rows, ld, z_of, sums), true)) || ...);
}

}  // namespace

namespace detail {

template <class T>
void bias_activation_block(T* y, Index ldy, Index rows, Index cols, const T* bias, Activation act,
                           T slope) {
  const B<T> sl(slope);
  with_activation(act, [&](auto a) {
    using R = typename decltype(a)::type;
    if (ldy == cols && simd::rows_tile<T>(cols)) {
      const B<T> b = simd::repeated(bias, cols);
      simd::zip(
          rows * cols, y, [&](B<T> v) { return R::forward(v + b, sl); }, y);
      return;
    }
    constexpr Index w = simd::width<T>;
    if (ldy == cols && cols % w != 0 && cols <= kFlatBiasCols && rows > 1) {
      // Contiguous rows whose width is not a whole number of batches (a MADE's 50 hidden units):
      // one flat run of whole batches, not a padded tail batch per row, which costs a whole
      // batch of the activation each. A batch starting at element e needs bias[(e + l) % cols]
      // in lane l: a copy of the bias run on for w more elements, read from e % cols.
      alignas(64) T tiled[kFlatBiasCols + w];
      for (Index k = 0; k < cols + w; ++k) tiled[k] = bias[k % cols];
      const Index n = rows * cols;
      Index e = 0, at = 0;
      for (; e + w <= n; e += w) {
        const B<T> v = B<T>::load_unaligned(y + e) + B<T>::load_unaligned(tiled + at);
        R::forward(v, sl).store_unaligned(y + e);
        at += w;
        while (at >= cols) at -= cols;
      }
      if (e < n)
        simd::zip(
            n - e, y + e, [&](B<T> v, B<T> b) { return R::forward(v + b, sl); }, y + e,
            static_cast<const T*>(tiled + at));
      return;
    }
    for (Index i = 0; i < rows; ++i) {
      T* row = y + i * ldy;
      simd::zip(
          cols, row, [&](B<T> v, B<T> b) { return R::forward(v + b, sl); }, row, bias);
    }
  });
}

template <class T>
void activation_backward_block(const T* y, const T* gy, T* gz, Index rows, Index cols,
                               Activation act, T slope, T* col_sums) {
  const B<T> sl(slope);
  with_activation(act, [&](auto a) {
    using R = typename decltype(a)::type;
    auto z_of = [&](B<T> v, B<T> g) { return g * R::derivative_from_output(v, sl); };
    if (!col_sums) {
      simd::zip(rows * cols, gz, z_of, y, gy);
      return;
    }
    std::fill(col_sums, col_sums + cols, T(0));
    if (simd::rows_tile<T>(cols)) {
      // Rows narrower than a batch (a layer of 1 or 2 outputs): one flat pass, in which lane k
      // of every batch belongs to column k % cols; the zero-padded tail adds nothing.
      B<T> acc(T(0));
      simd::zip(
          rows * cols, gz,
          [&](B<T> v, B<T> g) {
            const B<T> z = z_of(v, g);
            acc += z;
            return z;
          },
          y, gy);
      simd::fold_into(acc, cols, col_sums);
      return;
    }
    // Whole batches of columns, up to kSweep at a time with their sums in registers across the
    // rows (summed through memory, each row's sums waited on the previous row's stores).
    constexpr Index w = simd::width<T>;
    const Index full = cols / w;
    for (Index q0 = 0; q0 < full; q0 += kSweep) {
      const T* yq = y + q0 * w;
      const T* gq = gy + q0 * w;
      T* zq = gz + q0 * w;
      T* sq = col_sums + q0 * w;
      sweep_columns_n(std::min<Index>(kSweep, full - q0), std::make_integer_sequence<int, kSweep>{},
                      yq, gq, zq, rows, cols, z_of, sq);
    }
    // The last t = cols % w columns: gathered from a run of rows into whole batches, done, and
    // put back, rather than a padded batch per row. The sums take the rows in order, as above.
    const Index j = full * w, t = cols - j;
    if (t == 0) return;
    constexpr Index kRun = 16 * w;
    alignas(64) T yb[kRun], gb[kRun];
    const Index run_rows = kRun / t;
    for (Index i0 = 0; i0 < rows; i0 += run_rows) {
      const Index count = std::min(run_rows, rows - i0) * t;
      for (Index k = 0, r = i0, c = 0; k < count; ++k) {
        yb[k] = y[r * cols + j + c];
        gb[k] = gy[r * cols + j + c];
        if (++c == t) c = 0, ++r;
      }
      simd::zip(count, gb, z_of, static_cast<const T*>(yb), static_cast<const T*>(gb));
      for (Index k = 0, r = i0, c = 0; k < count; ++k) {
        gz[r * cols + j + c] = gb[k];
        col_sums[j + c] += gb[k];
        if (++c == t) c = 0, ++r;
      }
    }
  });
}

template <class T>
void transpose_bias_activation_block(const T* ct, Index ldct, Index rows, Index cols, const T* bias,
                                     Activation act, T slope, T* y, Index ldy) {
  // A group of rows is finished while it is in L1: transposed through registers, then biased.
  constexpr Index g = std::is_same_v<T, float> ? 8 : 4;  // transpose_block's square
  for (Index i = 0; i < rows; i += g) {
    const Index r = std::min(g, rows - i);
    Index j = 0;
    if (r == g)
      for (; j + g <= cols; j += g) transpose_block(ct + j * ldct + i, ldct, y + i * ldy + j, ldy);
    for (Index q = 0; q < r; ++q)
      for (Index c = j; c < cols; ++c) y[(i + q) * ldy + c] = ct[c * ldct + i + q];
    if (bias) bias_activation_block(y + i * ldy, ldy, r, cols, bias, act, slope);
  }
}

template void bias_activation_block(float*, Index, Index, Index, const float*, Activation, float);
template void bias_activation_block(double*, Index, Index, Index, const double*, Activation,
                                    double);
template void activation_backward_block(const float*, const float*, float*, Index, Index,
                                        Activation, float, float*);
template void activation_backward_block(const double*, const double*, double*, Index, Index,
                                        Activation, double, double*);
template void transpose_bias_activation_block(const float*, Index, Index, Index, const float*,
                                              Activation, float, float*, Index);
template void transpose_bias_activation_block(const double*, Index, Index, Index, const double*,
                                              Activation, double, double*, Index);

}  // namespace detail

template <Scalar T>
void bias_activation(Tensor<T>& y, const Tensor<T>& bias, Activation act, T slope) {
  if (bias.numel() != y.cols())
    throw std::invalid_argument("bias_activation: bias " + bias.shape().str() + " for output " +
                                y.shape().str());
  const Index m = y.rows(), n = y.cols();
  const int nt = simd::threads_for(m * n, grain(act));
  if (simd::rows_tile<T>(n)) {
    // Flat chunks of whole batches, each starting on a row boundary.
    simd::parallel_for(nt, m * n, simd::width<T>, [&](Index e0, Index e1) {
      detail::bias_activation_block(y.data() + e0, n, (e1 - e0) / n, n, bias.data(), act, slope);
    });
    return;
  }
  simd::parallel_for(nt, m, 1, [&](Index i0, Index i1) {
    detail::bias_activation_block(y.data() + i0 * n, n, i1 - i0, n, bias.data(), act, slope);
  });
}

template <Scalar T>
void activation_backward(const Tensor<T>& y, const Tensor<T>& gy, Activation act, T slope,
                         Tensor<T>& gz, Tensor<T>* bias_grad) {
  check("activation_backward", y.shape(), gy.shape(), "gradient");
  if (bias_grad && bias_grad->numel() != y.cols())
    throw std::invalid_argument("activation_backward: bias gradient " + bias_grad->shape().str() +
                                " for output " + y.shape().str());
  if (&gz != &gy) gz.resize(y.shape());
  const Index m = y.rows(), n = y.cols();
  const B<T> sl(slope);
  const int nt = simd::threads_for(m * n, grain(act));
  with_activation(act, [&](auto a) {
    using R = typename decltype(a)::type;
    auto z_of = [&](B<T> v, B<T> g) { return g * R::derivative_from_output(v, sl); };
    if (simd::rows_tile<T>(n) && !bias_grad)
      return simd::zip_mt(grain(act), m * n, gz.data(), z_of, y.data(), gy.data());
    if (simd::rows_tile<T>(n)) {
      // One thread, whatever the tensor: the bias gradient's lanes are summed in flat order.
      // The zero-padded tail contributes g = 0, so nothing to the bias gradient.
      B<T> acc(T(0));
      simd::zip(
          m * n, gz.data(),
          [&](B<T> v, B<T> g) {
            const B<T> z = z_of(v, g);
            acc += z;
            return z;
          },
          y.data(), gy.data());
      if (bias_grad) simd::fold_into(acc, n, bias_grad->data());
      return;
    }
    if (!bias_grad) {
      simd::parallel_for(nt, m, 1, [&](Index i0, Index i1) {
        for (Index i = i0; i < i1; ++i)
          simd::zip(n, gz.data() + i * n, z_of, y.data() + i * n, gy.data() + i * n);
      });
      return;
    }
    // The bias gradient is summed in the same pass, per block of kBiasRows rows into that block's
    // own partial row, and the partials are added in block order. The blocks do not depend on the
    // thread count (threads take whole blocks), so neither does the result.
    constexpr Index kBiasRows = 128;
    const Index blocks = (m + kBiasRows - 1) / kBiasRows;
    T* partial = bias_partials<T>(blocks * n);
    simd::parallel_for(std::min<Index>(nt, blocks), blocks, 1, [&](Index b0, Index b1) {
      for (Index b = b0; b < b1; ++b) {
        const Index i = b * kBiasRows, rows = std::min(kBiasRows, m - i);
        detail::activation_backward_block(y.data() + i * n, gy.data() + i * n, gz.data() + i * n,
                                          rows, n, act, slope, partial + b * n);
      }
    });
    for (Index b = 0; b < blocks; ++b)
      simd::zip(
          n, bias_grad->data(), [](B<T> p, B<T> q) { return p + q; }, bias_grad->data(),
          partial + b * n);
  });
}

template void bias_activation(Tensor<float>&, const Tensor<float>&, Activation, float);
template void bias_activation(Tensor<double>&, const Tensor<double>&, Activation, double);
template void activation_backward(const Tensor<float>&, const Tensor<float>&, Activation, float,
                                  Tensor<float>&, Tensor<float>*);
template void activation_backward(const Tensor<double>&, const Tensor<double>&, Activation, double,
                                  Tensor<double>&, Tensor<double>*);

}  // namespace flowgrad::FLOWGRAD_ISA_NS
