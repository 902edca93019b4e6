// Column ops: cat, narrow, masks, and the affine transform of some columns (a coupling layer's).
#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "flowgrad/autodiff/detail/op_support.hpp"

namespace flowgrad {

using detail::push;

namespace {

// Copies columns [from, from + width) of src into columns [to, to + width) of dst, adding when
// `add` is set.
template <Scalar T>
void copy_columns(const Tensor<T>& src, Index from, Tensor<T>& dst, Index to, Index width,
                  bool add) {
  const Index sc = src.cols(), dc = dst.cols();
  const T* s = src.data() + from;
  T* d = dst.data() + to;
  // A 2-D flow moves one or two columns at a time: a call to memmove per row would cost more
  // than the copy.
  if (width == 1) {
    for (Index i = 0; i < src.rows(); ++i) d[i * dc] = (add ? d[i * dc] : T(0)) + s[i * sc];
    return;
  }
  for (Index i = 0; i < src.rows(); ++i, s += sc, d += dc) {
    if (add)
      for (Index j = 0; j < width; ++j) d[j] += s[j];
    else
      std::copy(s, s + width, d);
  }
}

// Each part's gradient is its block of columns of g.
template <Scalar T>
struct CatOp {
  static void backward(Tape<T>& t, const Node<T>& n) {
    Index col = 0;
    for (int k = 0; k < Node<T>::max_inputs && n.in[k] >= 0; ++k) {
      const Index w = t.value(n.in[k]).cols();
      if (auto* g = t.grad_for(n.in[k])) copy_columns(n.grad, col, *g, 0, w, true);
      col += w;
    }
  }
};

// narrow's gradient lands in the columns it took: [aux, aux + width).
template <Scalar T>
struct NarrowOp {
  static void backward(Tape<T>& t, const Node<T>& n) {
    if (auto* g = t.grad_for(n.in[0])) copy_columns(n.grad, 0, *g, n.aux, n.grad.cols(), true);
  }
};

// Each selected column's gradient goes back to the column it came from (added: an index may
// repeat).
template <Scalar T>
struct SelectColumnsOp {
  static void backward(Tape<T>& t, const Node<T>& n) {
    Tensor<T>* gx = t.grad_for(n.in[0]);
    if (!gx) return;
    const auto& idx = *static_cast<const std::vector<Index>*>(n.ctx);
    const Index w = n.grad.cols(), src_cols = gx->cols();
    for (Index i = 0; i < n.grad.rows(); ++i)
      for (Index j = 0; j < w; ++j)
        (*gx)[i * src_cols + idx[static_cast<std::size_t>(j)]] += n.grad[i * w + j];
  }
};

// y = x but for columns idx[j]: x * e + t forward, (x - t) * e inverse, with e = exp(+-s) kept in
// saved[0]. Forward: dy/dx = e, dy/ds = y - t, dy/dt = 1. Inverse: dy/dx = e, dy/ds = -y,
// dy/dt = -e. Inputs: x, s, t; aux: 1 for the inverse.
template <Scalar T>
struct AffineColumnsOp {
  static void backward(Tape<T>& t, const Node<T>& n) {
    const auto& idx = *static_cast<const std::vector<Index>*>(n.ctx);
    const bool inverse = n.aux != 0;
    Tensor<T>* gx = t.grad_for(n.in[0]);
    Tensor<T>* gs = t.grad_for(n.in[1]);
    Tensor<T>* gt = t.grad_for(n.in[2]);
    const T* e = n.saved[0].data();
    const T* shift = t.value(n.in[2]).data();
    const T* y = n.value.data();
    const T* g = n.grad.data();
    const Index m = n.value.rows(), d = n.value.cols(), k = static_cast<Index>(idx.size());
    // One column at a time, rows d apart: a 2-D flow has two columns and transforms one.
    if (gx)
      for (Index c = 0; c < d; ++c) {
        T* gxp = gx->data() + c;
        const T* gc = g + c;
        const auto it = std::find(idx.begin(), idx.end(), c);
        if (it == idx.end()) {
          for (Index i = 0; i < m; ++i) gxp[i * d] += gc[i * d];
        } else {
          const T* ej = e + (it - idx.begin());
          for (Index i = 0; i < m; ++i) gxp[i * d] += gc[i * d] * ej[i * k];
        }
      }
    for (Index j = 0; j < k; ++j) {
      const Index c = idx[static_cast<std::size_t>(j)];
      if (gs) {
        T* gsp = gs->data() + j;
        if (inverse)
          for (Index i = 0; i < m; ++i) gsp[i * k] -= g[i * d + c] * y[i * d + c];
        else
          for (Index i = 0; i < m; ++i)
            gsp[i * k] += g[i * d + c] * (y[i * d + c] - shift[i * k + j]);
      }
      if (gt) {
        T* gtp = gt->data() + j;
        if (inverse)
          for (Index i = 0; i < m; ++i) gtp[i * k] -= g[i * d + c] * e[i * k + j];
        else
          for (Index i = 0; i < m; ++i) gtp[i * k] += g[i * d + c];
      }
    }
  }
};

}  // namespace

template <Scalar T>
Var<T> select_columns(const Var<T>& x, const std::vector<Index>& idx) {
  const Shape s = x.shape();
  for (Index c : idx)
    if (c < 0 || c >= s.cols())
      throw std::invalid_argument("select_columns: column " + std::to_string(c) + " is outside " +
                                  s.str());
  Var<T> out;
  Node<T>& n = push<SelectColumnsOp<T>>("select_columns", &out, {x});
  n.ctx = &idx;
  const Tensor<T>& v = x.tape().value(x.index());
  const Index m = v.rows(), w = static_cast<Index>(idx.size());
  n.value.resize(Shape{m, w});
  for (Index i = 0; i < m; ++i)
    for (Index j = 0; j < w; ++j)
      n.value[i * w + j] = v[i * v.cols() + idx[static_cast<std::size_t>(j)]];
  return out;
}

template <Scalar T>
Var<T> affine_columns(const Var<T>& x, const Var<T>& s, const Var<T>& t,
                      const std::vector<Index>& idx, bool inverse) {
  const Shape xs = x.shape();
  const Shape want{xs.rows(), static_cast<Index>(idx.size())};
  if (xs.rank() > 2 || !(s.shape() == want) || !(t.shape() == want))
    throw std::invalid_argument("affine_columns: input " + xs.str() + " with " +
                                std::to_string(idx.size()) +
                                " columns to transform needs s and t " + want.str() + ", got " +
                                s.shape().str() + " and " + t.shape().str());
  // Per-thread flags that only grow: a training step allocates nothing.
  thread_local std::vector<unsigned char> seen;
  seen.assign(static_cast<std::size_t>(std::max<Index>(xs.cols(), seen.size())), 0);
  for (Index c : idx) {
    if (c < 0 || c >= xs.cols())
      throw std::invalid_argument("affine_columns: column " + std::to_string(c) + " is outside " +
                                  xs.str());
    if (seen[static_cast<std::size_t>(c)])
      throw std::invalid_argument("affine_columns: column " + std::to_string(c) + " repeats");
    seen[static_cast<std::size_t>(c)] = true;
  }
  Var<T> out;
  Node<T>& n = push<AffineColumnsOp<T>>("affine_columns", &out, {x, s, t});
  n.ctx = &idx;
  n.aux = inverse ? 1 : 0;
  // Inputs are read only after push(): a push may move the tape's nodes.
  Tape<T>& tape = x.tape();
  const Tensor<T>& xv = tape.value(x.index());
  const Tensor<T>& sv = tape.value(s.index());
  const Tensor<T>& tv = tape.value(t.index());
  n.saved.resize(1);
  Tensor<T>& e = n.saved[0];
  if (inverse) {
    unary(Unary::neg, sv, e);
    unary(Unary::exp, e, e);
  } else {
    unary(Unary::exp, sv, e);
  }
  n.value = xv;
  const Index m = xv.rows(), d = xv.cols(), k = static_cast<Index>(idx.size());
  for (Index j = 0; j < k; ++j) {
    const Index c = idx[static_cast<std::size_t>(j)];
    T* y = n.value.data() + c;
    const T* ep = e.data() + j;
    const T* tp = tv.data() + j;
    if (inverse)
      for (Index i = 0; i < m; ++i) y[i * d] = (y[i * d] - tp[i * k]) * ep[i * k];
    else
      for (Index i = 0; i < m; ++i) y[i * d] = y[i * d] * ep[i * k] + tp[i * k];
  }
  return out;
}

template <Scalar T>
Var<T> cat(std::initializer_list<Var<T>> parts) {
  if (parts.size() == 0 || parts.size() > Node<T>::max_inputs)
    throw std::invalid_argument("cat: takes 1 to " + std::to_string(Node<T>::max_inputs) +
                                " parts");
  Tape<T>& t = parts.begin()->tape();
  const Index m = t.value(parts.begin()->index()).rows();
  Index width = 0;
  for (const Var<T>& p : parts) {
    t.check("cat", p);
    const Tensor<T>& v = t.value(p.index());
    if (v.rows() != m || v.shape().rank() > 2)
      throw std::invalid_argument(
          "cat: parts have different row counts: " + t.value(parts.begin()->index()).shape().str() +
          " and " + v.shape().str());
    width += v.cols();
  }
  Var<T> out;
  Node<T>& n = t.push("cat", &CatOp<T>::backward, parts, &out);
  n.value.resize(Shape{m, width});
  Index col = 0;
  for (const Var<T>& p : parts) {
    const Tensor<T>& v = t.value(p.index());
    copy_columns(v, 0, n.value, col, v.cols(), false);
    col += v.cols();
  }
  return out;
}

template <Scalar T>
Var<T> narrow(const Var<T>& x, Index start, Index length) {
  const Shape s = x.shape();
  if (start < 0 || length < 0 || start + length > s.cols())
    throw std::invalid_argument("narrow: columns [" + std::to_string(start) + ", " +
                                std::to_string(start + length) + ") are outside " + s.str());
  Var<T> out;
  Node<T>& n = push<NarrowOp<T>>("narrow", &out, {x});
  // Read the input only after push(): a push may move the tape's nodes.
  const Tensor<T>& v = x.tape().value(x.index());
  n.aux = static_cast<int>(start);
  n.value.resize(Shape{v.rows(), length});
  copy_columns(v, start, n.value, 0, length, false);
  return out;
}

template <Scalar T>
std::vector<Var<T>> split(const Var<T>& x, const std::vector<Index>& widths) {
  Index total = 0;
  for (Index w : widths) total += w;
  if (total != x.cols())
    throw std::invalid_argument("split: widths add up to " + std::to_string(total) + ", input is " +
                                x.shape().str());
  std::vector<Var<T>> parts;
  Index start = 0;
  for (Index w : widths) {
    parts.push_back(narrow(x, start, w));
    start += w;
  }
  return parts;
}

template <Scalar T>
Var<T> mask_columns(const Var<T>& x, const Tensor<T>& mask) {
  if (mask.rows() != 1 || mask.cols() != x.cols())
    throw std::invalid_argument("mask_columns: mask " + mask.shape().str() + " for input " +
                                x.shape().str());
  return mul(x, x.tape().constant(mask));
}

#define FLOWGRAD_INSTANTIATE(T)                                               \
  template Var<T> cat(std::initializer_list<Var<T>>);                         \
  template Var<T> narrow(const Var<T>&, Index, Index);                        \
  template Var<T> select_columns(const Var<T>&, const std::vector<Index>&);   \
  template Var<T> mask_columns(const Var<T>&, const Tensor<T>&);              \
  template Var<T> affine_columns(const Var<T>&, const Var<T>&, const Var<T>&, \
                                 const std::vector<Index>&, bool);            \
  template std::vector<Var<T>> split(const Var<T>&, const std::vector<Index>&);
FLOWGRAD_FOR_EACH_SCALAR(FLOWGRAD_INSTANTIATE)
#undef FLOWGRAD_INSTANTIATE

}  // namespace flowgrad
