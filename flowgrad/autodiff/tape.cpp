#include "flowgrad/autodiff/tape.hpp"

#include <stdexcept>
#include <string>

#include "flowgrad/autodiff/detail/fused_update.hpp"
#include "flowgrad/autodiff/op_author.hpp"

namespace flowgrad {

template <Scalar T>
const Tensor<T>& Var<T>::value() const {
  if (!tape_) throw std::logic_error("Var: empty handle (default-constructed)");
  OpTape<T> t(*tape_);
  t.check("value", *this);
  return t.value(index_);
}

template <Scalar T>
const Tensor<T>& Var<T>::grad() const {
  if (!tape_) throw std::logic_error("Var: empty handle (default-constructed)");
  OpTape<T> t(*tape_);
  t.check("grad", *this);
  const Node<T>& n = t.node(index_);
  if (n.param) return n.param->grad;
  if (!n.has_grad) throw std::logic_error("Var::grad: no gradient reached this node");
  return n.grad;
}

template <Scalar T>
bool Var<T>::requires_grad() const {
  if (!tape_) throw std::logic_error("Var: empty handle (default-constructed)");
  OpTape<T> t(*tape_);
  t.check("requires_grad", *this);
  return t.node(index_).requires_grad;
}

template <Scalar T>
Tape<T>::Tape() = default;
template <Scalar T>
Tape<T>::~Tape() = default;

template <Scalar T>
void OpTape<T>::check(const char* op, const Var<T>& v) const {
  if (v.tape_ != &tape_)
    throw std::logic_error(std::string(op) + ": Var belongs to another tape (or is empty)");
  if (v.epoch_ != tape_.epoch_ || v.index_ < 0 || v.index_ >= tape_.size_)
    throw std::logic_error(std::string(op) + ": Var is from before the tape's last reset()");
}

template <Scalar T>
Node<T>& OpTape<T>::push(const char* op, BackwardFn<T> backward, std::span<const Var<T>> inputs,
                         Var<T>* out) {
  if (inputs.size() > Node<T>::max_inputs)
    throw std::logic_error(std::string(op) + ": too many inputs");
  for (const Var<T>& v : inputs) check(op, v);
  Tape<T>& t = tape_;
  if (t.size_ == static_cast<std::int32_t>(t.chunks_.size()) * Tape<T>::kChunkSize)
    t.chunks_.push_back(std::make_unique<Node<T>[]>(Tape<T>::kChunkSize));
  Node<T>& n = node(t.size_);
  n.param = nullptr;
  n.indices.clear();
  n.has_grad = false;
  bool requires_grad = false;
  int k = 0;
  for (const Var<T>& v : inputs) {
    n.in[k++] = v.index_;
    requires_grad = requires_grad || node(v.index_).requires_grad;
  }
  for (; k < Node<T>::max_inputs; ++k) n.in[k] = -1;
  n.requires_grad = requires_grad && t.grad_enabled_;
  n.backward = n.requires_grad ? backward : nullptr;
  *out = Var<T>(&t, t.size_++, t.epoch_);
  return n;
}

template <Scalar T>
Tensor<T>* OpTape<T>::grad_for(std::int32_t i) {
  Node<T>& n = node(i);
  if (!n.requires_grad) return nullptr;
  if (n.param) {
    if (!n.param->has_grad()) n.param->zero_grad();
    return &n.param->grad;
  }
  if (!n.has_grad) {
    n.grad.resize(n.value.shape());
    n.grad.fill(T(0));
    n.has_grad = true;
  }
  return &n.grad;
}

template <Scalar T>
Tensor<T>* OpTape<T>::grad_for(std::int32_t i, bool* overwrite) {
  Node<T>& n = node(i);
  if (n.requires_grad && n.param && !n.param->has_grad()) {
    *overwrite = true;
    n.param->grad.resize(n.param->value.shape());
    return &n.param->grad;
  }
  *overwrite = n.requires_grad && !n.param && !n.has_grad;
  if (!*overwrite) return grad_for(i);
  n.grad.resize(n.value.shape());
  n.has_grad = true;
  return &n.grad;
}

template <Scalar T>
const AdamTarget<T>* OpTape<T>::fused_update(std::int32_t i) {
  const Node<T>& n = node(i);
  if (!tape_.fused_ || !n.param || !n.requires_grad || n.param->has_grad() ||
      tape_.uses_[static_cast<std::size_t>(i)] != 1)
    return nullptr;
  return tape_.fused_->claim(*n.param);
}

template <Scalar T>
Tensor<T>& OpTape<T>::scratch(int slot) {
  if (slot < 0 || slot >= scratch_slots)
    throw std::logic_error("OpTape::scratch: no slot " + std::to_string(slot));
  return tape_.scratch_[static_cast<std::size_t>(slot)];
}

template <Scalar T>
Var<T> Tape<T>::constant(const Tensor<T>& value, bool requires_grad) {
  Var<T> v;
  Node<T>& n = OpTape<T>(*this).push("constant", nullptr, {}, &v);
  n.value = value;
  n.requires_grad = requires_grad && grad_enabled_;
  return v;
}

template <Scalar T>
Var<T> Tape<T>::full(Shape shape, T value) {
  Var<T> v;
  Node<T>& n = OpTape<T>(*this).push("full", nullptr, {}, &v);
  n.value.resize(shape);
  n.value.fill(value);
  return v;
}

template <Scalar T>
Var<T> Tape<T>::parameter(Parameter<T>& param) {
  Var<T> v;
  Node<T>& n = OpTape<T>(*this).push("parameter", nullptr, {}, &v);
  n.param = &param;
  n.requires_grad = grad_enabled_;
  return v;
}

template <Scalar T>
void Tape<T>::backward(const Var<T>& loss) {
  OpTape<T> t(*this);
  t.check("backward", loss);
  const Tensor<T>& v = t.value(loss.index_);
  if (v.numel() != 1)
    throw std::invalid_argument("backward: output of shape " + v.shape().str() +
                                " is not a scalar; pass a seed gradient of that shape");
  Tensor<T>& g = t.scratch(0);
  g.resize(v.shape());
  g.fill(T(1));
  run_backward(loss, g);
}

template <Scalar T>
void Tape<T>::backward(const Var<T>& root, const Tensor<T>& seed) {
  fused_ = nullptr;
  run_backward(root, seed);
}

template <Scalar T>
void Tape<T>::run_backward(const Var<T>& root, const Tensor<T>& seed) {
  OpTape<T> t(*this);
  t.check("backward", root);
  const std::int32_t r = root.index_;
  if (!(seed.shape() == t.value(r).shape()))
    throw std::invalid_argument("backward: seed of shape " + seed.shape().str() +
                                " for an output of shape " + t.value(r).shape().str());
  if (!t.node(r).requires_grad)
    throw std::logic_error("backward: the output does not depend on anything that requires grad");
  // Gradients of intermediate nodes from an earlier backward on this tape are stale.
  for (std::int32_t i = 0; i < size_; ++i) t.node(i).has_grad = false;
  Tensor<T>* g = t.grad_for(r);
  for (Index k = 0; k < seed.numel(); ++k) (*g)[k] += seed[k];
  for (std::int32_t i = r; i >= 0; --i) {
    const Node<T>& n = t.node(i);
    // Nodes no gradient reached, and leaves, have nothing to pass on.
    if (n.backward && n.has_grad) n.backward(t, n);
  }
  // A parameter no gradient reached has a zero one, also after clear_grad().
  for (std::int32_t i = 0; i < size_; ++i) {
    const Node<T>& n = t.node(i);
    if (n.param && n.requires_grad && !n.param->has_grad() &&
        !(fused_ && fused_->claimed(*n.param)))
      n.param->zero_grad();
  }
}

namespace detail {

template <Scalar T>
void FusedBackward<T>::run(const Var<T>& loss, FusedUpdates<T>& updates) {
  Tape<T>& tape = loss.tape();
  OpTape<T> t(tape);
  t.check("backward", loss);
  // How many backward rules each parameter leaf feeds, counting a parameter recorded by two
  // leaves as shared by both: only a parameter fed to one rule once has its whole gradient there.
  const auto size = static_cast<std::size_t>(tape.size_);
  tape.uses_.assign(size, 0);
  for (std::int32_t i = 0; i <= loss.index(); ++i) {
    const Node<T>& n = t.node(i);
    if (n.backward)
      for (std::int32_t in : n.in)
        if (in >= 0) ++tape.uses_[static_cast<std::size_t>(in)];
  }
  for (std::int32_t i = 0; i < tape.size_; ++i)
    for (std::int32_t j = i + 1; t.node(i).param && j < tape.size_; ++j)
      if (t.node(j).param == t.node(i).param)
        tape.uses_[static_cast<std::size_t>(i)] = tape.uses_[static_cast<std::size_t>(j)] = 2;
  tape.fused_ = &updates;
  try {
    tape.backward(loss);
  } catch (...) {
    tape.fused_ = nullptr;
    throw;
  }
  tape.fused_ = nullptr;
}

template struct FusedBackward<float>;
template struct FusedBackward<double>;

}  // namespace detail

template <Scalar T>
std::size_t Tape<T>::bytes_reserved() const {
  std::size_t n = 0;
  for (const auto& chunk : chunks_)
    for (std::int32_t i = 0; i < kChunkSize; ++i) {
      const Node<T>& node = chunk[static_cast<std::size_t>(i)];
      n += node.value.capacity() + node.grad.capacity();
      for (const Tensor<T>& s : node.saved) n += s.capacity();
    }
  for (const Tensor<T>& s : scratch_) n += s.capacity();
  return n * sizeof(T);
}

template <Scalar T>
void Tape<T>::reset() {
  size_ = 0;
  ++epoch_;
}

template class Tape<float>;
template class Tape<double>;
template class Var<float>;
template class Var<double>;
template class OpTape<float>;
template class OpTape<double>;

}  // namespace flowgrad
