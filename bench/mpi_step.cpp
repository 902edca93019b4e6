// Data-parallel training step time over MPI, with the allreduce's share: run under
// `mpirun -np N` (bench/mpi_scaling.sh runs 1 and 2 ranks and writes bench/results/). Rank 0
// prints one JSON line per model: milliseconds per step (mean over the timed steps), of which in
// the allreduce (waiting for the slower rank included), the allreduce of a gradient-sized buffer
// alone, and the gradient's size. The global batch is the same at every rank count.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "flowgrad/flows/fit.hpp"
#include "flowgrad/flows/models.hpp"
#include "flowgrad/parallel/mpi.hpp"
#include "image_models.hpp"

using namespace flowgrad;

namespace {

struct Case {
  std::string name;
  Index dim, batch;
  long steps;
};

std::unique_ptr<Composition<float>> build(const std::string& name, Generator& gen) {
  if (name == "realnvp_d2_h64") {
    RealNVPConfig c;  // train_2d's default model
    return make_realnvp<float>(c, gen);
  }
  if (name == "maf_d8") {
    MAFConfig c;  // the sbi package's default MAF
    c.dim = 8;
    return make_maf<float>(c, gen);
  }
  trainimg::ImageModelConfig c;  // train_images' default: RealNVP, 6 couplings, hidden 1024 x 2
  return trainimg::build_image_flow(c, gen);
}

}  // namespace

int main(int argc, char** argv) {
  MpiSession session(argc, argv);
  MpiCollective world;
  const std::vector<Case> cases = {{"realnvp_d2_h64", 2, 1024, 200},
                                   {"maf_d8", 8, 1024, 200},
                                   {"image_realnvp_d784_h1024", 784, 256, 12}};
  // `mpi_step [MODEL [DIVISOR]]`: one model, its batch divided by DIVISOR (the per-row cost).
  const long divisor = argc > 2 ? std::max(1L, std::atol(argv[2])) : 1;
  for (Case c : cases) {
    if (argc > 1 && c.name != argv[1] && std::string(argv[1]) != "all") continue;
    c.batch /= divisor;
    Generator gen(1);
    DensityFlow<float> model(build(c.name, gen));
    FitOptions o;
    o.steps = c.steps + 3;
    o.batch = c.batch;
    o.collective = &world;
    DensityTrainer<float> trainer(
        model,
        [&](Index n, Generator& g, TensorF& out) {
          out = g.normal<float>(Shape{n, c.dim});
        },
        o);
    trainer.run_to(3);  // warm-up: buffers sized, ActNorm initialised
    double token = 0;
    world.sum(&token, 1);  // start together
    const double reduce_before = world.sum_seconds();
    const auto start = std::chrono::steady_clock::now();
    trainer.run();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double in_steps = world.sum_seconds() - reduce_before;
    // The allreduce inside a step also waits for the slower rank; alone, after the ranks have met,
    // it shows what moving the gradient costs.
    std::vector<float> gradient(static_cast<std::size_t>(model.parameter_count()) + 1, 1.0f);
    constexpr int kAlone = 50;
    world.sum(&token, 1);
    const auto alone_start = std::chrono::steady_clock::now();
    for (int i = 0; i < kAlone; ++i) world.sum(gradient.data(), gradient.size());
    const double alone =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - alone_start).count();
    double timing[3] = {seconds, in_steps, alone};
    world.sum(timing, 3);  // the ranks' mean
    if (world.is_root()) {
      const double ms = 1e3 * timing[0] / world.size() / static_cast<double>(c.steps);
      const double reduce_ms = 1e3 * timing[1] / world.size() / static_cast<double>(c.steps);
      const double alone_ms = 1e3 * timing[2] / world.size() / kAlone;
      std::printf(
          "{\"model\": \"%s\", \"ranks\": %d, \"batch\": %ld, \"parameters\": %ld, "
          "\"gradient_mb\": %.3f, \"ms_per_step\": %.4f, \"allreduce_ms_per_step\": %.4f, "
          "\"allreduce_alone_ms\": %.4f, \"steps\": %ld}\n",
          c.name.c_str(), world.size(), static_cast<long>(c.batch),
          static_cast<long>(model.parameter_count()),
          static_cast<double>(model.parameter_count()) * 4.0 / 1e6, ms, reduce_ms, alone_ms,
          c.steps);
      std::fflush(stdout);
    }
  }
  return 0;
}
