#pragma once
// The reverse-mode tape: a Wengert list of nodes in execution order. Backward is one reverse walk.
//
// Nodes live in one vector that reset() empties without freeing, and each node keeps its value and
// gradient tensors between steps, so a training step that builds the same graph again allocates
// nothing once warmed up.
#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <vector>

#include "flowgrad/autodiff/parameter.hpp"
#include "flowgrad/tensor/tensor.hpp"

namespace flowgrad {

template <Scalar T>
class Tape;
template <Scalar T>
struct Node;

// A node's backward rule: adds the node's gradient, pushed through the op, into its inputs'.
template <Scalar T>
using BackwardFn = void (*)(Tape<T>& tape, const Node<T>& node);

template <Scalar T>
struct Node {
  static constexpr int max_inputs = 8;
  Tensor<T> value;
  Tensor<T> grad;                 // sized and zeroed only when a gradient reaches the node
  std::vector<Tensor<T>> saved;   // what an op keeps for its backward (an MLP's hidden layers)
  Parameter<T>* param = nullptr;  // a leaf standing for a module's parameter
  BackwardFn<T> backward = nullptr;
  std::int32_t in[max_inputs] = {-1, -1, -1, -1, -1, -1, -1, -1};
  T c0 = 0, c1 = 0;           // op constants (a slope, an exponent, a scalar)
  int aux = 0;                // op selector (which elementwise function, which dim)
  const void* ctx = nullptr;  // op data owned elsewhere that outlives the step (column indices)
  bool requires_grad = false;
  bool has_grad = false;  // grad holds this pass's gradient
};

// A handle to a node: a tape and an index, plus the tape's epoch so that a Var kept across
// reset() is caught instead of silently reading another node.
template <Scalar T>
class Var {
 public:
  Var() = default;
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
  Var(Tape<T>* tape, std::int32_t index, std::uint32_t epoch)
      : tape_(tape), index_(index), epoch_(epoch) {}
  Tape<T>* tape_ = nullptr;
  std::int32_t index_ = -1;
  std::uint32_t epoch_ = 0;
};

template <Scalar T>
class Tape {
 public:
  Tape() = default;
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

  // --- for op implementations ---
  // Appends a node with the given inputs; the caller fills its value. The reference is valid until
  // the next push.
  Node<T>& push(const char* op, BackwardFn<T> backward, std::initializer_list<Var<T>> inputs,
                Var<T>* out);
  Node<T>& push(const char* op, BackwardFn<T> backward, std::span<const Var<T>> inputs,
                Var<T>* out);
  const Tensor<T>& value(std::int32_t i) const;
  // The gradient buffer of input i, zeroed on first use in this pass, or nullptr when no gradient
  // is wanted there.
  Tensor<T>* grad_for(std::int32_t i);
  // The same, for a rule that can write the whole gradient rather than add to it: on first use in
  // this pass the buffer is sized but not zeroed and *overwrite is set, and the rule must then
  // write every element.
  Tensor<T>* grad_for(std::int32_t i, bool* overwrite);
  // Scratch tensors for backward rules, kept between steps. A fixed set, so that a reference to
  // one slot stays valid while another is in use.
  static constexpr int scratch_slots = 4;
  Tensor<T>& scratch(int slot);
  const Node<T>& node(std::int32_t i) const { return nodes_[static_cast<std::size_t>(i)]; }
  void check(const char* op, const Var<T>& v) const;

 private:
  friend class Var<T>;
  Var<T> make_var(std::int32_t i) { return Var<T>(this, i, epoch_); }
  std::vector<Node<T>> nodes_;
  std::array<Tensor<T>, scratch_slots> scratch_;
  std::int32_t size_ = 0;
  std::uint32_t epoch_ = 1;
  bool grad_enabled_ = true;
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
