#pragma once
// Not installed: how an optimizer's update rides along a backward pass (Adam::backward_step): a
// backward rule that forms a parameter's whole gradient claims the parameter's update
// (OpTape::fused_update) and applies it to the gradient while the gradient is still in cache,
// instead of storing it in the parameter's buffer for a step() to read back.
#include "flowgrad/autodiff/tape.hpp"
#include "flowgrad/tensor/detail/adam_update.hpp"

namespace flowgrad::detail {

// The optimizer's side of it.
template <Scalar T>
class FusedUpdates {
 public:
  virtual ~FusedUpdates() = default;
  // param's update, or null when param is not the optimizer's. A target handed out is a promise by
  // the caller to update every element, and param's gradient is not stored.
  virtual const AdamTarget<T>* claim(const Parameter<T>& param) = 0;
  virtual bool claimed(const Parameter<T>& param) const = 0;
};

// tape.backward(loss), with the rules free to claim the updates.
template <Scalar T>
struct FusedBackward {
  static void run(const Var<T>& loss, FusedUpdates<T>& updates);
};

}  // namespace flowgrad::detail
