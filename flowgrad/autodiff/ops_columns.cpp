// Column ops: cat, narrow, split, selection and masks.
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
  static void backward(OpTape<T>& t, const Node<T>& n) {
    Index col = 0;
    for (int k = 0; k < Node<T>::max_inputs && n.in[k] >= 0; ++k) {
      const Index w = t.value(n.in[k]).cols();
      if (auto* g = t.grad_for(n.in[k])) copy_columns(n.grad, col, *g, 0, w, true);
      col += w;
    }
  }
};

// narrow's gradient lands in the columns it took: [start, start + width).
template <Scalar T>
struct NarrowOp {
  struct State {
    Index start;
  };
  static void backward(OpTape<T>& t, const Node<T>& n) {
    if (auto* g = t.grad_for(n.in[0]))
      copy_columns(n.grad, 0, *g, state<State>(n).start, n.grad.cols(), true);
  }
};

// Each selected column's gradient goes back to the column it came from (added: an index may
// repeat).
template <Scalar T>
struct SelectColumnsOp {
  static void backward(OpTape<T>& t, const Node<T>& n) {
    Tensor<T>* gx = t.grad_for(n.in[0]);
    if (!gx) return;
    const std::vector<Index>& idx = n.indices;
    const Index w = n.grad.cols(), src_cols = gx->cols();
    for (Index i = 0; i < n.grad.rows(); ++i)
      for (Index j = 0; j < w; ++j)
        (*gx)[i * src_cols + idx[static_cast<std::size_t>(j)]] += n.grad[i * w + j];
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
  n.indices.assign(idx.begin(), idx.end());
  const Tensor<T>& v = x.value();
  const Index m = v.rows(), w = static_cast<Index>(idx.size());
  n.value.resize(Shape{m, w});
  for (Index i = 0; i < m; ++i)
    for (Index j = 0; j < w; ++j)
      n.value[i * w + j] = v[i * v.cols() + idx[static_cast<std::size_t>(j)]];
  return out;
}

template <Scalar T>
Var<T> cat(std::initializer_list<Var<T>> parts) {
  if (parts.size() == 0 || parts.size() > Node<T>::max_inputs)
    throw std::invalid_argument("cat: takes 1 to " + std::to_string(Node<T>::max_inputs) +
                                " parts");
  OpTape<T> t(parts.begin()->tape());
  for (const Var<T>& p : parts) t.check("cat", p);
  const Tensor<T>& first = parts.begin()->value();
  Index width = 0;
  for (const Var<T>& p : parts) {
    const Tensor<T>& v = p.value();
    if (v.rows() != first.rows() || v.shape().rank() > 2)
      throw std::invalid_argument("cat: parts have different row counts: " + first.shape().str() +
                                  " and " + v.shape().str());
    width += v.cols();
  }
  Var<T> out;
  Node<T>& n = t.push("cat", &CatOp<T>::backward, parts, &out);
  n.value.resize(Shape{first.rows(), width});
  Index col = 0;
  for (const Var<T>& p : parts) {
    const Tensor<T>& v = p.value();
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
  n.set_state(typename NarrowOp<T>::State{start});
  const Tensor<T>& v = x.value();
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

#define FLOWGRAD_INSTANTIATE(T)                                             \
  template Var<T> cat(std::initializer_list<Var<T>>);                       \
  template Var<T> narrow(const Var<T>&, Index, Index);                      \
  template Var<T> select_columns(const Var<T>&, const std::vector<Index>&); \
  template Var<T> mask_columns(const Var<T>&, const Tensor<T>&);            \
  template std::vector<Var<T>> split(const Var<T>&, const std::vector<Index>&);
FLOWGRAD_FOR_EACH_SCALAR(FLOWGRAD_INSTANTIATE)
#undef FLOWGRAD_INSTANTIATE

}  // namespace flowgrad
