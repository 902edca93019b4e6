#pragma once
// What a trainer does to train data-parallel over the ranks of a Collective: the same model on
// every rank from the start, a shard of each global batch per rank, and one sum over the ranks per
// step of everything the ranks must agree on. Trainer uses it when FitOptions::collective is set;
// it is public for programs that write their own loop.
#include <cstdint>
#include <utility>
#include <vector>

#include "flowgrad/autodiff/module.hpp"
#include "flowgrad/parallel/collective.hpp"

namespace flowgrad {

template <Scalar T>
class DataParallel {
 public:
  // Puts the gradients of all of model's parameters into one contiguous buffer (each
  // Parameter::grad becomes a view of its part) and copies rank 0's parameters and buffers to every
  // rank. Collective.
  DataParallel(Collective& collective, Module<T>& model);
  // Gives each gradient memory of its own again (with its values), as the model outlives this.
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  Collective& collective() { return c_; }
  // This rank's rows of a global batch of `rows`: {first row, count}. The shards differ in size by
  // at most one row and cover the batch in rank order. Throws std::invalid_argument when there are
  // fewer rows than ranks.
  std::pair<Index, Index> shard(Index rows) const;

  // Collective, after the local backward pass of a loss that is the mean over this rank's shard
  // (shard_rows of global_rows): turns the gradients into those of the mean over the global batch,
  // and batch statistics into their average (both weighted by shard size), in one sum over the
  // ranks (MPI_Allreduce), and returns the global batch's loss. A non-finite loss on any rank
  // makes it non-finite on every rank.
  double reduce(double local_loss, Index shard_rows, Index global_rows);

  // Copies rank 0's parameters and buffers to every rank. Collective.
  void broadcast_model();
  // A hash of the parameters and buffers (their bytes); the ranks' must agree.
  std::uint64_t checksum() const;
  // Collective: throws std::runtime_error, naming the step, when the ranks' parameters or buffers
  // differ.
  void check_identical(long step);

 private:
  Collective& c_;
  std::vector<Parameter<T>*> params_;
  std::vector<Tensor<T>*> buffers_, statistics_;
  // The gradients (in 64-byte aligned parts), then the batch statistics, then the loss.
  Tensor<T> flat_;
  std::vector<std::size_t> grad_offset_;
  std::size_t stats_offset_ = 0, loss_offset_ = 0;
};

extern template class DataParallel<float>;
extern template class DataParallel<double>;

}  // namespace flowgrad
