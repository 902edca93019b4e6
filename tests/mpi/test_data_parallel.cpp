// Data-parallel training over MPI, run under `mpirun -np 2` (CTest: mpi_data_parallel). Each
// check runs on every rank; a failure prints the rank and ends the job (MPI_Abort), since a rank
// that left a collective early would leave the other waiting.
//
// The reference for "the same trajectory" is one process training on the whole batch, computed
// on every rank alone; data-parallel ranks each take a shard of the same global batches.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "../parallel_helpers.hpp"
#include "flowgrad/flows/actnorm.hpp"
#include "flowgrad/flows/fit.hpp"
#include "flowgrad/flows/fit_checkpoint.hpp"
#include "flowgrad/flows/models.hpp"
#include "flowgrad/parallel/mpi.hpp"

using namespace flowgrad;
using flowgrad::testing::curved_data;
using flowgrad::testing::max_relative;
using flowgrad::testing::parameters_of;

namespace {

MpiCollective* world = nullptr;
int failures = 0;

void check(bool ok, const std::string& what) {
  if (ok) return;
  std::fprintf(stderr, "rank %d: FAILED: %s\n", world->rank(), what.c_str());
  ++failures;
}

// ActNorm (initialised from the first batch), then a MAF: the data-dependent initialisation and
// the masked conditioners in one model.
template <Scalar T>
std::unique_ptr<DensityFlow<T>> actnorm_maf(Index context) {
  Generator gen(11);
  MAFConfig maf;
  maf.dim = 3;
  maf.layers = 3;
  maf.layer.made.hidden = 16;
  maf.layer.made.context = context;
  auto chain = std::make_unique<Composition<T>>(3);
  chain->add(std::make_unique<ActNorm<T>>(3));
  chain->add(make_maf<T>(maf, gen));
  return std::make_unique<DensityFlow<T>>(std::move(chain));
}

template <Scalar T>
std::unique_ptr<DensityFlow<T>> realnvp(bool batch_norm) {
  Generator gen(13);
  RealNVPConfig c;
  c.dim = 3;
  c.couplings = 4;
  c.coupling.hidden = 16;
  c.batch_norm = batch_norm;
  return std::make_unique<DensityFlow<T>>(make_realnvp<T>(c, gen));
}

// Data-parallel options over the two ranks.
FitOptions on_ranks(long steps, Index batch) {
  FitOptions o;
  o.steps = steps;
  o.batch = batch;
  o.collective = world;
  return o;
}

struct Trajectory {
  std::vector<double> losses, params;
};

template <Scalar T>
Trajectory train(std::unique_ptr<DensityFlow<T>> model, const Tensor<T>& data, FitOptions o) {
  DensityTrainer<T> trainer(*model, data, o);
  const FitReport r = trainer.run();
  Trajectory t;
  t.losses.assign(r.losses.begin(), r.losses.end());
  t.params = parameters_of<T>(*model);
  return t;
}

// One process with the whole batch against two ranks with half of it each: the same losses and
// parameters to the tolerance of summing the gradients in another order.
template <Scalar T>
void same_trajectory(const std::string& name,
                     std::function<std::unique_ptr<DensityFlow<T>>()> build, Index cols,
                     Index batch, double tolerance) {
  const Tensor<T> data = curved_data<T>(600, cols);
  FitOptions o;
  o.steps = 40;
  o.batch = batch;
  o.adam.lr = 3e-3;
  o.seed = 5;
  const Trajectory alone = train<T>(build(), data, o);
  o.collective = world;
  o.check_every = 10;
  auto model = build();
  DensityTrainer<T> trainer(*model, data, o);
  const FitReport r = trainer.run();
  const std::vector<double> losses(r.losses.begin(), r.losses.end());
  const std::vector<double> params = parameters_of<T>(*model);
  const double dl = max_relative(losses, alone.losses), dp = max_relative(params, alone.params);
  if (world->is_root())
    std::printf(
        "%s: batch %ld over %d ranks vs one process: losses differ by %.2e, parameters by "
        "%.2e (relative; tolerance %.0e)\n",
        name.c_str(), static_cast<long>(batch), world->size(), dl, dp, tolerance);
  check(losses.size() == alone.losses.size(), name + ": step count");
  check(dl <= tolerance, name + ": losses differ from one process's by " + std::to_string(dl));
  check(dp <= tolerance, name + ": parameters differ from one process's by " + std::to_string(dp));
  // Not just close: the ranks hold the very same bits.
  check(world->same_everywhere(trainer.data_parallel()->checksum()),
        name + ": ranks' parameters differ");
}

void batch_norm_ranks_agree() {
  const TensorF data = curved_data<float>(600, 3);
  auto model = realnvp<float>(true);
  const FitOptions o = on_ranks(25, 128);
  DensityTrainer<float> trainer(*model, data, o);
  trainer.run();
  // Per-rank batch statistics in the forward pass; running averages averaged over the ranks each
  // step, so that every rank (and the checkpoint rank 0 writes) holds the same ones.
  check(world->same_everywhere(trainer.data_parallel()->checksum()),
        "batch norm: ranks' parameters or running statistics differ");
  bool moved = false;
  for (const auto& b : model->named_buffers())
    if (b.batch_statistic)
      for (Index j = 0; j < b.tensor->numel(); ++j)
        moved |= (*b.tensor)[j] != 0.0f && (*b.tensor)[j] != 1.0f;
  check(moved, "batch norm: running statistics never moved");
}

// Generated batches: each rank draws its own shard from a stream of its own.
void generated_batches_differ_per_rank() {
  auto model = realnvp<float>(false);
  const FitOptions o = on_ranks(1, 64);
  TensorF first;
  DensityTrainer<float> trainer(
      *model,
      [&](Index n, Generator& g, TensorF& out) {
        out = g.normal<float>(Shape{n, 3});
        if (first.empty()) first = out;
      },
      o);
  trainer.run();
  check(first.rows() == 32, "generated batches: a shard of 32 rows expected");
  double mine = first[0];
  world->sum(&mine, 1);
  check(std::abs(mine - 2.0 * first[0]) > 1e-6, "generated batches: every rank drew the same rows");
}

// A run stopped at step 15 and resumed from its checkpoint (written by rank 0, read by every
// rank) ends where the uninterrupted run ends, for data drawn from a shared sampler and for
// batches each rank generates.
void resume_is_exact(const std::string& dir) {
  const TensorF data = curved_data<float>(600, 3);
  const BatchSource<float> source = [](Index n, Generator& g, TensorF& out) {
    out = g.normal<float>(Shape{n, 3});
    for (Index i = 0; i < n; ++i) out(i, 1) += 0.5f * out(i, 0) * out(i, 0);
  };
  for (const bool generated : {false, true}) {
    const std::string what = generated ? "resume (generated batches)" : "resume (data tensor)";
    const FitOptions o = on_ranks(30, 100);
    auto make_trainer = [&](DensityFlow<float>& m) {
      return generated ? std::make_unique<DensityTrainer<float>>(m, source, o)
                       : std::make_unique<DensityTrainer<float>>(m, data, o);
    };
    auto straight = actnorm_maf<float>(0);
    make_trainer(*straight)->run();

    const std::string path = dir + (generated ? "/generated.safetensors" : "/tensor.safetensors");
    auto first = actnorm_maf<float>(0);
    auto t1 = make_trainer(*first);
    t1->run_to(15);
    save_trainer(path, *t1);
    double written = 0;
    world->sum(&written, 1);  // rank 0 has written the file before anyone reads it
    // Rank 0 alone writes: a path of each rank's own name exists for rank 0 only.
    const std::string own = dir + "/written-by-rank-" + std::to_string(world->rank());
    save_trainer(own, *t1);
    check(std::filesystem::exists(own) == world->is_root(), what + ": a rank other than 0 wrote");
    auto second = actnorm_maf<float>(0);  // fresh, as a new process would build it
    auto t2 = make_trainer(*second);
    resume_trainer(path, *t2);
    check(t2->step() == 15, what + ": step after resume");
    t2->run();
    check(parameters_of<float>(*second) == parameters_of<float>(*straight),
          what + ": not bit for bit the uninterrupted run");
  }
}

void mismatch_is_caught() {
  const TensorF data = curved_data<float>(600, 3);
  auto model = realnvp<float>(false);
  FitOptions o = on_ranks(5, 64);
  o.check_every = 1;
  DensityTrainer<float> trainer(*model, data, o);
  trainer.run_to(2);
  if (world->rank() == 1) model->parameters()[0]->value[0] += 1e-3f;  // a rank gone astray
  bool caught = false;
  try {
    trainer.run();
  } catch (const std::runtime_error& e) {
    caught = std::string(e.what()).find("ranks' parameters differ") != std::string::npos;
  }
  check(caught, "a rank whose parameters differ is not reported");
}

void bad_settings_are_errors() {
  auto model = realnvp<float>(false);
  const TensorF data = curved_data<float>(600, 3);
  FitOptions o = on_ranks(1, 1);  // a batch of fewer rows than ranks
  bool caught = false;
  try {
    DensityTrainer<float> trainer(*model, data, o);
  } catch (const std::invalid_argument& e) {
    caught = std::string(e.what()).find("cannot be shared by") != std::string::npos;
  }
  check(caught, "a batch smaller than the ranks is not an error");
  // An epoch whose last batch has fewer rows than ranks (601 = 6 x 100 + 1).
  const TensorF odd = curved_data<float>(601, 3);
  o.batch = 100;
  caught = false;
  try {
    DensityTrainer<float> trainer(*model, odd, o);
  } catch (const std::invalid_argument& e) {
    caught = std::string(e.what()).find("drop_last") != std::string::npos;
  }
  check(caught, "an epoch's last batch smaller than the ranks is not an error");
}

// A non-finite loss on one rank stops every rank at the same step, with the model as before it.
void non_finite_on_one_rank() {
  TensorF data = curved_data<float>(600, 3);
  auto model = realnvp<float>(false);
  FitOptions o = on_ranks(10, 600);
  o.replacement = false;
  DensityTrainer<float> trainer(*model, data, o);
  trainer.run_to(3);
  const std::vector<double> before = parameters_of<float>(*model);
  // Poison the rows only rank 1 sees: the second half of each (full-data, unshuffled-size) batch.
  if (world->rank() == 1)
    for (Index i = 0; i < data.rows(); ++i) data(i, 0) = std::nanf("");
  long stopped_at = -1;
  try {
    trainer.run();
  } catch (const NonFiniteLossError& e) {
    stopped_at = e.step();
  }
  long agreed = stopped_at;
  double s = static_cast<double>(stopped_at);
  world->sum(&s, 1);
  check(stopped_at == 4 && s == 2.0 * static_cast<double>(agreed),
        "a NaN on one rank did not stop both at step 4 (here: " + std::to_string(stopped_at) + ")");
  check(parameters_of<float>(*model) == before, "the failed step changed the parameters");
}

}  // namespace

int main(int argc, char** argv) {
  MpiSession session(argc, argv);
  MpiCollective collective;
  world = &collective;
  if (world->size() < 2) {
    std::fprintf(stderr, "run under mpirun -np 2 (or more)\n");
    return 2;
  }
  std::string dir;
  if (world->is_root())
    dir = (std::filesystem::temp_directory_path() / ("flowgrad-mpi-" + std::to_string(::getpid())))
              .string();
  dir = world->broadcast(dir);
  if (world->is_root()) std::filesystem::create_directories(dir);
  try {
    // Double: the sum over ranks reorders additions only, so agreement is to rounding, which
    // Adam's normalisation lets grow over the steps (2e-10 measured after 40 steps); a wrong
    // weighting or a missing rank's gradient shows at 1e-3 and more.
    same_trajectory<double>(
        "actnorm + maf, double", [] { return actnorm_maf<double>(0); }, 3, 128, 1e-8);
    same_trajectory<double>(
        "actnorm + maf, odd batch 127, double", [] { return actnorm_maf<double>(0); }, 3, 127,
        1e-8);
    same_trajectory<double>(
        "conditional maf, double", [] { return actnorm_maf<double>(1); }, 4, 128, 1e-8);
    // Float: the same, at float's rounding (2e-7 measured after 40 steps).
    same_trajectory<float>(
        "realnvp, float", [] { return realnvp<float>(false); }, 3, 128, 1e-5);
    batch_norm_ranks_agree();
    generated_batches_differ_per_rank();
    resume_is_exact(dir);
    mismatch_is_caught();
    bad_settings_are_errors();
    non_finite_on_one_rank();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: unexpected exception: %s\n", world->rank(), e.what());
    MpiSession::abort(1);
  }
  double total = failures;
  world->sum(&total, 1);
  if (world->is_root()) {
    std::filesystem::remove_all(dir);
    std::printf("%s\n", total == 0 ? "all data-parallel checks passed" : "FAILED");
  }
  return total == 0 ? 0 : 1;
}
