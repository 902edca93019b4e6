#pragma once
// Batches of a data set's rows for stochastic training: seeded, resumable, and free of allocation
// once warm.
#include <cstdint>
#include <string>
#include <vector>

#include "flowgrad/tensor/random.hpp"
#include "flowgrad/tensor/tensor.hpp"

namespace flowgrad {

struct BatchOptions {
  Index batch = 256;
  // false: epochs, each a fresh seeded permutation of the rows visited in order, so that every row
  // is used exactly once per epoch. true: every row of every batch drawn uniformly, independently.
  bool replacement = false;
  // Without replacement, an epoch whose rows are not a multiple of `batch` ends in a smaller batch;
  // drop_last skips those rows instead, so that every batch has `batch` rows.
  bool drop_last = false;
};

// Draws batches of rows of `data`, which it reads in place: the tensor must outlive the sampler
// and keep its shape. Copyable; a copy continues independently.
template <Scalar T>
class BatchSampler {
 public:
  // Throws std::invalid_argument for data without rows or columns, batch < 1, or, with drop_last
  // and without replacement, a batch larger than the data.
  BatchSampler(const Tensor<T>& data, BatchOptions options, std::uint64_t seed);
  BatchSampler(const Tensor<T>&& data, BatchOptions options, std::uint64_t seed) = delete;

  // The next batch, written into out's buffer ([batch, cols], or fewer rows for an epoch's last
  // batch); out's allocation is reused, so a warm call allocates nothing.
  void next(Tensor<T>& out);

  const BatchOptions& options() const { return options_; }
  Index rows() const { return data_->rows(); }
  // Batches in one epoch (with replacement: as many as it takes to draw `rows` rows).
  Index batches_per_epoch() const;
  // Without replacement: the epoch in progress, 1-based (0 before the first batch), and how many of
  // its permutation's rows have been handed out. With replacement both stay 0.
  long epoch() const { return epoch_; }
  Index position() const { return position_; }
  long batches_drawn() const { return batches_drawn_; }

  // Everything that decides the batches still to come, as one line of text (for a checkpoint's
  // metadata): the settings, the counters and the generator's state at the start of the epoch
  // in progress (the permutation is drawn again from it on restore). set_state() on a sampler over
  // the same data continues exactly where the saved one was; it throws std::invalid_argument, and
  // changes nothing, when the text is malformed or was saved with other rows, batch or mode.
  std::string state() const;
  void set_state(const std::string& state);

  // The generator the batches come from (the data itself does not change it).
  Generator& generator() { return gen_; }

 private:
  void start_epoch();

  const Tensor<T>* data_;
  BatchOptions options_;
  Generator gen_;
  Generator epoch_start_;  // gen_ as it was before this epoch's permutation
  std::vector<Index> perm_;
  long epoch_ = 0;
  Index position_ = 0;
  long batches_drawn_ = 0;
};

// n rows of `data` picked uniformly at random (with replacement) into `out` ([n, cols]), reusing
// out's buffer. Draws: gen.below(rows) for each output row in order. Throws std::invalid_argument
// when data has no rows or n < 0.
template <Scalar T>
void sample_rows(const Tensor<T>& data, Index n, Generator& gen, Tensor<T>& out);

extern template class BatchSampler<float>;
extern template class BatchSampler<double>;
extern template void sample_rows(const Tensor<float>&, Index, Generator&, Tensor<float>&);
extern template void sample_rows(const Tensor<double>&, Index, Generator&, Tensor<double>&);

}  // namespace flowgrad
