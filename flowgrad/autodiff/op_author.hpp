#pragma once
// For those who write new ops: what a tape node holds and how an op records one. A user of the
// library never needs this header (flowgrad/flowgrad.hpp does not include it).
//
// An op is a function that pushes a node and fills its value (and its state, a small struct of
// its constants), and a backward rule that adds the node's gradient, pushed through the op, into
// its inputs' gradients. docs/design.md §9 walks through one; tests/test_op_author.cpp compiles
// and gradchecks it.
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <new>
#include <span>
#include <type_traits>
#include <vector>

#include "flowgrad/autodiff/tape.hpp"

namespace flowgrad {

template <class T>
struct AdamTarget;

// A node's backward rule: adds the node's gradient, pushed through the op, into its inputs'.
template <Scalar T>
using BackwardFn = void (*)(OpTape<T>& tape, const Node<T>& node);

template <Scalar T>
struct Node {
  static constexpr int max_inputs = 8;
  static constexpr std::size_t max_state_bytes = 32;

  Tensor<T> value;
  Tensor<T> grad;                 // sized and zeroed only when a gradient reaches the node
  std::vector<Tensor<T>> saved;   // what an op keeps for its backward (an MLP's hidden layers)
  std::vector<Index> indices;     // an op's own copy of an index list (columns to select)
  Parameter<T>* param = nullptr;  // a leaf standing for a module's parameter
  BackwardFn<T> backward = nullptr;
  std::int32_t in[max_inputs] = {-1, -1, -1, -1, -1, -1, -1, -1};
  bool requires_grad = false;
  bool has_grad = false;  // grad holds this pass's gradient

  // The op's constants (a slope, a flag, a dimension) as the op's own small struct S, stored in
  // the node: set by the forward, read back by the backward rule with state<S>(node).
  template <class S>
  S& set_state(const S& s) {
    check_state<S>();
    return *::new (static_cast<void*>(state_)) S(s);
  }

  template <class S>
  static constexpr void check_state() {
    static_assert(std::is_trivially_copyable_v<S> && std::is_trivially_destructible_v<S>,
                  "an op's state is plain data: it is overwritten, never destroyed");
    static_assert(sizeof(S) <= max_state_bytes && alignof(S) <= alignof(std::max_align_t),
                  "an op's state must fit in Node::max_state_bytes");
  }

 private:
  template <class S, Scalar U>
  friend const S& state(const Node<U>& node);
  alignas(std::max_align_t) std::byte state_[max_state_bytes] = {};
};

// The state that node's forward stored with set_state(S{...}).
template <class S, Scalar T>
const S& state(const Node<T>& node) {
  Node<T>::template check_state<S>();
  return *std::launder(reinterpret_cast<const S*>(node.state_));
}

// The op author's view of a tape: push nodes, read values, reach the inputs' gradients.
template <Scalar T>
class OpTape {
 public:
  explicit OpTape(Tape<T>& tape) : tape_(tape) {}

  // Appends a node with the given inputs (at most Node::max_inputs) and returns it for the op to
  // fill its value and state. Nodes never move: the reference stays valid until reset().
  Node<T>& push(const char* op, BackwardFn<T> backward, std::span<const Var<T>> inputs,
                Var<T>* out);
  Node<T>& push(const char* op, BackwardFn<T> backward, std::initializer_list<Var<T>> inputs,
                Var<T>* out) {
    return push(op, backward, std::span<const Var<T>>(inputs.begin(), inputs.size()), out);
  }

  Node<T>& node(std::int32_t i) const {
    return tape_.chunks_[static_cast<std::size_t>(i >> Tape<T>::kChunkBits)]
                        [static_cast<std::size_t>(i & (Tape<T>::kChunkSize - 1))];
  }
  // A node's value (a parameter leaf's is the parameter's).
  const Tensor<T>& value(std::int32_t i) const {
    const Node<T>& n = node(i);
    return n.param ? n.param->value : n.value;
  }
  // The gradient buffer of node i, zeroed on first use in this pass (a parameter's: when
  // clear_grad() emptied it), or nullptr when no gradient is wanted there.
  Tensor<T>* grad_for(std::int32_t i);
  // The same, for a rule that can write the whole gradient rather than add to it: on first use in
  // this pass (a parameter's: when emptied) the buffer is sized but not zeroed and *overwrite is
  // set, and the rule must then write every element.
  Tensor<T>* grad_for(std::int32_t i, bool* overwrite);
  // For a rule that computes the whole gradient of input i at once: when the backward pass fuses
  // an optimizer's update (Adam::backward_step) and i is a parameter whose gradient is empty and
  // that feeds this rule alone and once, its update, which the rule must then apply to every
  // element in place of writing the gradient (detail/fused_update.hpp); null otherwise, and
  // always for a node other than a parameter leaf. Valid until the next call: copy it to keep it.
  const AdamTarget<T>* fused_update(std::int32_t i);

  // Scratch tensors for backward rules, kept between steps. A fixed set, so that a reference to
  // one slot stays valid while another is in use. Slot 0 holds backward()'s seed.
  static constexpr int scratch_slots = Tape<T>::kScratchSlots;
  Tensor<T>& scratch(int slot);

  // Throws std::logic_error, naming op, when v is not a live Var of this tape.
  void check(const char* op, const Var<T>& v) const;
  Tape<T>& tape() const { return tape_; }

 private:
  Tape<T>& tape_;
};

extern template class OpTape<float>;
extern template class OpTape<double>;

}  // namespace flowgrad
