#pragma once
// The reverse-mode tape: a Wengert list of nodes in execution order. Backward is one reverse walk.
//
// A tape keeps its nodes, and each node its value and gradient tensors, across reset(), so a
// training step that builds the same graph again allocates nothing once warmed up. What a node
// holds, and how an op adds one, is the op author's business: flowgrad/autodiff/op_author.hpp.
#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "flowgrad/autodiff/parameter.hpp"
#include "flowgrad/tensor/tensor.hpp"

namespace flowgrad {

template <Scalar T>
class Tape;
template <Scalar T>
struct Node;
template <Scalar T>
class OpTape;
namespace detail {
template <Scalar T>
class FusedUpdates;
template <Scalar T>
struct FusedBackward;
}  // namespace detail

// A handle to a node: a tape and an index, plus the tape's epoch so that a Var kept across
// reset() is caught instead of silently reading another node.
template <Scalar T>
class Var {
 public:
  Var() = default;
  // A default-constructed Var refers to nothing (an absent optional input, such as no context).
  bool defined() const { return tape_ != nullptr; }
  Tape<T>& tape() const { return *tape_; }
  std::int32_t index() const { return index_; }
  const Tensor<T>& value() const;
  // The gradient from the last backward(); throws when none reached this Var.
  const Tensor<T>& grad() const;
  const Shape& shape() const { return value().shape(); }
  Index rows() const { return value().rows(); }
  Index cols() const { return value().cols(); }
  T item() const { return value().item(); }
  bool requires_grad() const;

 private:
  friend class Tape<T>;
  friend class OpTape<T>;
  Var(Tape<T>* tape, std::int32_t index, std::uint32_t epoch)
      : tape_(tape), index_(index), epoch_(epoch) {}
  Tape<T>* tape_ = nullptr;
  std::int32_t index_ = -1;
  std::uint32_t epoch_ = 0;
};

template <Scalar T>
class Tape {
 public:
  Tape();
  ~Tape();
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

  // A constant input: no gradient flows to it unless requires_grad is set.
  Var<T> constant(const Tensor<T>& value, bool requires_grad = false);
  // A constant filled with one value, built in the node's own buffer.
  Var<T> full(Shape shape, T value);
  // A leaf for a module's parameter; backward accumulates into param.grad.
  Var<T> parameter(Parameter<T>& param);

  // Backward from a one-element loss (seed 1), or from any node with an explicit seed gradient.
  void backward(const Var<T>& loss);
  void backward(const Var<T>& root, const Tensor<T>& seed);

  // Forgets every node; their buffers stay for the next step. Vars from before become invalid.
  void reset();
  std::int32_t size() const { return size_; }
  // Bytes held by the nodes' value, gradient and saved buffers and the scratch tensors.
  std::size_t bytes_reserved() const;

  // While no-grad mode is on, nodes carry values only: no backward rule, no gradient.
  bool grad_enabled() const { return grad_enabled_; }
  void set_grad_enabled(bool on) { grad_enabled_ = on; }

 private:
  friend class Var<T>;
  friend class OpTape<T>;
  friend struct detail::FusedBackward<T>;
  void run_backward(const Var<T>& root, const Tensor<T>& seed);
  // Nodes live in chunks that are allocated once and never reallocated, so a node (and its value)
  // keeps its address while later nodes are pushed.
  static constexpr int kChunkBits = 8;
  static constexpr std::int32_t kChunkSize = std::int32_t(1) << kChunkBits;
  std::vector<std::unique_ptr<Node<T>[]>> chunks_;
  static constexpr int kScratchSlots = 4;
  std::array<Tensor<T>, kScratchSlots> scratch_;
  std::int32_t size_ = 0;
  std::uint32_t epoch_ = 1;
  bool grad_enabled_ = true;
  // During a backward that lets rules apply an optimizer's update (detail/fused_update.hpp): the
  // optimizer, and per node the number of backward rules that a parameter leaf feeds.
  detail::FusedUpdates<T>* fused_ = nullptr;
  std::vector<std::int32_t> uses_;
};

// Turns gradient recording off for a scope (sampling, evaluation, plotting).
template <Scalar T>
class NoGradGuard {
 public:
  explicit NoGradGuard(Tape<T>& tape) : tape_(tape), was_(tape.grad_enabled()) {
    tape.set_grad_enabled(false);
  }
  ~NoGradGuard() { tape_.set_grad_enabled(was_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  Tape<T>& tape_;
  bool was_;
};

extern template class Tape<float>;
extern template class Tape<double>;
extern template class Var<float>;
extern template class Var<double>;

}  // namespace flowgrad
