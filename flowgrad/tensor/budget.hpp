#pragma once
// A cap on new Tensor storage, for code that builds objects whose sizes come from a file
// (flows/registry.cpp rebuilding a model): an allocation that would pass the cap throws
// std::length_error before anything is allocated, so a file that claims a huge model fails at once
// instead of exhausting memory.
#include <cstddef>

namespace flowgrad {

// Caps the bytes that Tensor allocations on this thread may take while the guard lives. Counted
// are the elements asked for (numel x sizeof), not the rounding up to whole cache lines; memory
// freed meanwhile is not given back. Guards nest: the innermost one counts, and charges its parent
// what it used when it ends.
class TensorBudget {
 public:
  explicit TensorBudget(std::size_t bytes);
  ~TensorBudget();
  TensorBudget(const TensorBudget&) = delete;
  TensorBudget& operator=(const TensorBudget&) = delete;

  std::size_t used() const { return used_; }
  std::size_t limit() const { return limit_; }

  // Tensor calls this before it allocates `elements` of `element_size` bytes; a no-op without a
  // guard on this thread.
  static void charge(std::size_t elements, std::size_t element_size);

 private:
  std::size_t limit_, used_ = 0;
  TensorBudget* parent_;
};

}  // namespace flowgrad
