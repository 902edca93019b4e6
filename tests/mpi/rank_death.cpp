// Rank 1 dies (SIGKILL) in the middle of data-parallel training; the test (rank_death.sh) checks
// that mpirun then ends rank 0 too, with an error, instead of leaving it waiting in the allreduce.
#include <csignal>
#include <cstdio>

#include "flowgrad/flows/fit.hpp"
#include "flowgrad/flows/models.hpp"
#include "flowgrad/parallel/mpi.hpp"

using namespace flowgrad;

int main(int argc, char** argv) {
  MpiSession session(argc, argv);
  MpiCollective world;
  Generator gen(1);
  RealNVPConfig config;
  config.batch_norm = false;
  DensityFlow<float> model(make_realnvp<float>(config, gen));
  FitOptions o;
  o.steps = 100000;  // far longer than the test's timeout: only the death can end it
  o.batch = 64;
  o.collective = &world;
  DensityTrainer<float> trainer(
      model, [](Index n, Generator& g, TensorF& out) { out = g.normal<float>(Shape{n, 2}); }, o);
  FitCallbacks callbacks;
  callbacks.on_progress = [&](const FitProgress& p) {
    if (p.step == 20 && world.rank() == 1) {
      std::fprintf(stderr, "rank 1: killing myself at step 20\n");
      std::raise(SIGKILL);
    }
    return FitAction::proceed;
  };
  trainer.run(callbacks);
  std::printf("rank %d: finished, which it should not have\n", world.rank());
  return 0;
}
