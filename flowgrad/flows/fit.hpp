#pragma once
// Training loops: a density flow fitted to data by maximum likelihood, a variational flow fitted
// to an unnormalised log-density by reverse KL.
//
// A trainer owns everything a resumed run must restore: the Adam state, the batch sampler (or the
// generator that draws the batches or base samples) and the step count. run_to(700) followed by
// run_to(2000) gives bit for bit what run_to(2000) gives, so saving these and the model, and
// setting them again in a fresh trainer, continues a run as if it had never stopped.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "flowgrad/autodiff/optim.hpp"
#include "flowgrad/data/batches.hpp"
#include "flowgrad/flows/models.hpp"
#include "flowgrad/parallel/data_parallel.hpp"

namespace flowgrad {

struct FitOptions {
  long steps = 1000;  // total steps of run(), counted from the trainer's first step
  long epochs = 0;    // > 0: steps = epochs x batches per epoch (fitting a data tensor only)
  Index batch = 256;  // rows per step, or samples per step for a variational fit
  AdamOptions adam = {};
  double clip = 0;  // the gradients' global norm is clipped to this (clip_grad_norm); 0: never
  // With a held-out set, its NLL is measured (in eval mode) after every eval_every steps; 0: never.
  long eval_every = 0;
  Index eval_batch = 4096;   // rows per forward pass of that measurement
  std::uint64_t seed = 0;    // the batch sampler's, or the batch source's generator's, seed
  bool replacement = false;  // batches drawn with replacement instead of epochs (BatchOptions)
  bool drop_last = false;    // epochs skip their last, smaller batch (BatchOptions)
  // Variational fits only: beta(step) multiplies log p in that step's loss (annealing, as in
  // Rezende & Mohamed 2015: min(1, 0.01 + step / 10000)); empty: 1 at every step.
  std::function<double(long step)> beta = {};
  // Data-parallel training over these ranks (flowgrad/parallel/mpi.hpp gives MPI's): every rank
  // builds the same trainer and the model is copied from rank 0; batch stays the global batch, of
  // which each rank takes its shard (the rows of a data tensor's batch in rank order, or its own
  // draws from a generator seeded per rank); one sum over the ranks per step makes the gradient
  // the global batch's. Must outlive the trainer. nullptr: this process alone.
  Collective* collective = nullptr;
  // With a collective, the ranks compare a checksum of their parameters after the first step of
  // every run and every check_every steps, and stop with an error if they differ.
  long check_every = 100;
};

// What a progress callback sees. held_out_nll is set on the steps where it was measured.
struct FitProgress {
  long step = 0;
  double loss = 0;
  std::optional<double> held_out_nll;
  double seconds = 0;  // since this run began
};

enum class FitAction { proceed, stop };

struct FitCallbacks {
  // Called after every `every` steps, after each held-out measurement and after the run's last
  // step; returning FitAction::stop ends the run there (a CLI can do that on SIGINT).
  std::function<FitAction(const FitProgress&)> on_progress;
  long every = 1;
};

struct FitReport {
  long first_step = 0;  // the steps this run made: first_step..last_step
  long last_step = 0;
  bool stopped = false;                           // a callback ended the run early
  std::vector<float> losses;                      // each step's loss, from first_step on
  std::vector<std::pair<long, double>> held_out;  // (step, held-out NLL)
  double seconds = 0;
  long steps() const { return last_step - first_step + 1; }
};

// Thrown when a step's loss (or gradient) is not finite. The model's parameters and buffers and the
// optimizer are left as they were after the last good step (step() - 1), since the check comes
// before the update; the batch that caused it has been drawn.
class NonFiniteLossError : public std::runtime_error {
 public:
  NonFiniteLossError(long step, double loss, std::string reason, const std::string& message)
      : std::runtime_error(message), step_(step), loss_(loss), reason_(std::move(reason)) {}
  long step() const { return step_; }
  double loss() const { return loss_; }  // NaN when the forward pass itself failed
  // What went wrong, without the step or advice ("the loss became inf", a layer's NaN error), for
  // an application that words its own message.
  const std::string& reason() const { return reason_; }

 private:
  long step_;
  double loss_;
  std::string reason_;
};

// Data for a conditional model p(x | c): each row is x followed by its context c (dim() +
// context_dim() columns), here, in the trainers and in test_nll.
//
// log p(x) (log p(x | c)) of each row of `rows`, [n, 1]: on the tape, differentiable, or values
// only.
template <Scalar T>
Var<T> log_prob_of_rows(DensityFlow<T>& model, const Var<T>& rows);
template <Scalar T>
Tensor<T> log_prob_of_rows(DensityFlow<T>& model, const Tensor<T>& rows);

// -mean log p(x) over the rows of data, in nats, computed in eval mode `batch` rows at a time; the
// model's mode is restored afterwards.
template <Scalar T>
double test_nll(DensityFlow<T>& model, const Tensor<T>& data, Index batch = 4096);

// What the density and variational trainers share: Adam over the model's parameters, the step
// count and the loop.
template <Scalar T>
class Trainer {
 public:
  virtual ~Trainer() = default;
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Runs until step() reaches options().steps (or the epochs' steps).
  FitReport run(const FitCallbacks& callbacks = {});
  // Runs steps step() + 1 .. last_step; nothing when last_step <= step().
  FitReport run_to(long last_step, const FitCallbacks& callbacks = {});
  // One step (forward, backward, clipping, Adam); returns its loss. Throws NonFiniteLossError; in
  // data-parallel training a layer's failure in step 1 is a std::runtime_error instead, after
  // which the program must end every rank (docs/design.md §14).
  double train_step();

  long step() const { return step_; }  // steps done
  // For resuming: the step count of the run being continued (the optimizer and the batches are
  // restored through optimizer() and batch_state()).
  void set_step(long step);
  long total_steps() const { return total_steps_; }
  Adam<T>& optimizer() { return adam_; }
  // The model being fitted, as a module (its parameters and buffers).
  Module<T>& module() { return model_; }
  // The data-parallel state when FitOptions::collective is set, else nullptr.
  DataParallel<T>* data_parallel() { return parallel_.get(); }
  const FitOptions& options() const { return options_; }

  // Everything that decides the coming batches or samples, as text: the sampler's state when
  // fitting a tensor, else the generator's.
  virtual std::string batch_state() const = 0;
  virtual void set_batch_state(const std::string& state) = 0;
  // Whether, in data-parallel training, every rank has its own batch state (its own generator)
  // rather than all sharing one (a data tensor's sampler).
  virtual bool batch_state_per_rank() const { return true; }

 protected:
  Trainer(Module<T>& model, FitOptions options, long total_steps);
  // This rank's rows of a batch of `rows` (all of them without a collective).
  std::pair<Index, Index> shard_of(Index rows) const;
  // options.seed, or for rank r > 0 of a collective a seed of its own.
  std::uint64_t rank_seed() const;
  // What loss() tells the step: its loss was the mean over `shard_rows` of a global batch of
  // `global_rows`.
  void set_shard(Index shard_rows, Index global_rows) {
    last_shard_rows_ = shard_rows;
    last_global_rows_ = global_rows;
  }
  // The step's loss, built on the tape from freshly drawn data.
  virtual Var<T> loss(Tape<T>& tape, long step) = 0;
  virtual bool has_held_out() const { return false; }
  virtual double held_out_nll() { return 0; }
  // What to tell the user, after the step number, when a loss is not finite.
  virtual std::string advice() const = 0;

  Module<T>& model_;
  FitOptions options_;

 private:
  [[noreturn]] void fail(long step, double loss, const std::string& what);

  Adam<T> adam_;
  std::unique_ptr<DataParallel<T>> parallel_;
  Tape<T> tape_;
  long step_ = 0;
  bool checked_ranks_ = false;  // the first step of this trainer compared the ranks' checksums
  Index last_shard_rows_ = 1, last_global_rows_ = 1;
  long total_steps_;
  std::vector<Tensor<T>*> buffers_;  // restored on a bad step: a forward may move them
  std::vector<Tensor<T>> saved_buffers_;
};

// Fills `out` with n fresh points drawn from `gen`: a data set that is a distribution, such as a
// toy data set, instead of a tensor of rows.
template <Scalar T>
using BatchSource = std::function<void(Index n, Generator& gen, Tensor<T>& out)>;

// Maximum likelihood: each step takes a batch and minimises -mean log p(x). Holds references to
// the model, the data and the held-out set, which must outlive it.
template <Scalar T>
class DensityTrainer : public Trainer<T> {
 public:
  // Batches of data's rows from a BatchSampler seeded with options.seed.
  DensityTrainer(DensityFlow<T>& model, const Tensor<T>& data, FitOptions options = {});
  // Batches from `source`, drawing from a generator seeded with options.seed.
  DensityTrainer(DensityFlow<T>& model, BatchSource<T> source, FitOptions options = {});
  DensityTrainer(DensityFlow<T>&, const Tensor<T>&&, FitOptions = {}) = delete;

  // The set whose NLL is measured every options().eval_every steps.
  void set_held_out(const Tensor<T>& held_out);
  void set_held_out(const Tensor<T>&&) = delete;

  // Throws std::logic_error when the batches come from a BatchSource.
  BatchSampler<T>& sampler();
  // The generator the batches come from (the sampler's, or the source's).
  Generator& generator();
  std::string batch_state() const override;
  void set_batch_state(const std::string& state) override;
  DensityFlow<T>& model() { return flow_; }
  bool batch_state_per_rank() const override { return !sampler_.has_value(); }

 private:
  Var<T> loss(Tape<T>& tape, long step) override;
  bool has_held_out() const override { return held_out_ != nullptr; }
  double held_out_nll() override;
  std::string advice() const override;

  DensityFlow<T>& flow_;
  std::optional<BatchSampler<T>> sampler_;
  BatchSource<T> source_;
  Generator source_gen_;
  const Tensor<T>* held_out_ = nullptr;
  Tensor<T> batch_, shard_;
};

// log p(x) of a batch of points x [n, dim], unnormalised, built from tape ops; [n, 1].
template <Scalar T>
using LogDensity = std::function<Var<T>(const Var<T>& x)>;

// Reverse KL: each step draws options.batch samples x from q and minimises
// mean(log q(x) - beta(step) log p(x)), which is KL(q || p) - log Z at beta = 1.
template <Scalar T>
class VariationalTrainer : public Trainer<T> {
 public:
  VariationalTrainer(VariationalFlow<T>& q, LogDensity<T> log_density, FitOptions options = {});
  // The generator of q's base samples, seeded with options.seed.
  Generator& generator() { return gen_; }
  std::string batch_state() const override { return gen_.state(); }
  void set_batch_state(const std::string& state) override { gen_.set_state(state); }
  VariationalFlow<T>& model() { return q_; }

 private:
  Var<T> loss(Tape<T>& tape, long step) override;
  std::string advice() const override;

  VariationalFlow<T>& q_;
  LogDensity<T> log_density_;
  Generator gen_;
};

// One call: a trainer, run to the end.
template <Scalar T>
FitReport fit_density(DensityFlow<T>& model, const Tensor<T>& data, const FitOptions& options = {},
                      const FitCallbacks& callbacks = {});
// The same, measuring held_out's NLL every options.eval_every steps.
template <Scalar T>
FitReport fit_density(DensityFlow<T>& model, const Tensor<T>& data, const Tensor<T>& held_out,
                      const FitOptions& options = {}, const FitCallbacks& callbacks = {});
template <Scalar T>
FitReport fit_variational(VariationalFlow<T>& q,
                          const std::type_identity_t<LogDensity<T>>& log_density,
                          const FitOptions& options = {}, const FitCallbacks& callbacks = {});

extern template class Trainer<float>;
extern template class Trainer<double>;
extern template class DensityTrainer<float>;
extern template class DensityTrainer<double>;
extern template class VariationalTrainer<float>;
extern template class VariationalTrainer<double>;

}  // namespace flowgrad
