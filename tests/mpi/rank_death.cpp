// Ranks that cannot go on together (rank_death.sh runs both cases under mpirun):
//   kill:      rank 1 dies (SIGKILL) in the middle of training; mpirun must end rank 0 too, with
//              an error, instead of leaving it waiting in the allreduce;
//   first-nan: rank 1's first batch is NaN while rank 0 initialises ActNorm from its own, in a sum
//              rank 1 can no longer join; rank 1's error must end the job (MPI_Abort), not hang it.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>

#include "flowgrad/flows/actnorm.hpp"
#include "flowgrad/flows/fit.hpp"
#include "flowgrad/flows/models.hpp"
#include "flowgrad/parallel/mpi.hpp"

using namespace flowgrad;

int main(int argc, char** argv) {
  MpiSession session(argc, argv);
  MpiCollective world;
  const bool first_nan = argc > 1 && std::strcmp(argv[1], "first-nan") == 0;
  Generator gen(1);
  RealNVPConfig config;
  config.batch_norm = false;
  auto chain = std::make_unique<Composition<float>>(2);
  chain->add(std::make_unique<ActNorm<float>>(2));
  chain->add(make_realnvp<float>(config, gen));
  DensityFlow<float> model(std::move(chain));
  FitOptions o;
  o.steps = 100000;  // far longer than the test's timeout: only the failure can end it
  o.batch = 64;
  o.collective = &world;
  const bool poisoned = first_nan && world.rank() == 1;
  DensityTrainer<float> trainer(
      model,
      [&](Index n, Generator& g, TensorF& out) {
        out = g.normal<float>(Shape{n, 2});
        if (poisoned) out[0] = std::numeric_limits<float>::quiet_NaN();
      },
      o);
  FitCallbacks callbacks;
  callbacks.on_progress = [&](const FitProgress& p) {
    if (!first_nan && p.step == 20 && world.rank() == 1) {
      std::fprintf(stderr, "rank 1: killing myself at step 20\n");
      std::raise(SIGKILL);
    }
    return FitAction::proceed;
  };
  try {
    trainer.run(callbacks);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: %s\n", world.rank(), e.what());
    MpiSession::abort(3);
  }
  std::printf("rank %d: finished, which it should not have\n", world.rank());
  return 0;
}
