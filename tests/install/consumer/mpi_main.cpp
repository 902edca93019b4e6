// Data-parallel fitting through the installed flowgrad::mpi, as a user's program would write it;
// run it with `mpirun -np N`.
#include <cstdio>
#include <flowgrad/flowgrad.hpp>
#include <flowgrad/parallel/mpi.hpp>

int main(int argc, char** argv) {
  flowgrad::MpiSession session(argc, argv);
  flowgrad::MpiCollective world;
  flowgrad::Generator gen(1);
  flowgrad::MAFConfig config;
  flowgrad::DensityFlow<float> model(flowgrad::make_maf<float>(config, gen));
  const flowgrad::TensorF data = gen.normal<float>(flowgrad::Shape{1000, 2});
  flowgrad::FitOptions options;
  options.steps = 20;
  options.collective = &world;
  const flowgrad::FitReport report = flowgrad::fit_density(model, data, options);
  if (world.is_root())
    std::printf("%d ranks, final loss %.4f\n", world.size(), report.losses.back());
  return 0;
}
