// Load a flow that another program saved (quickstart writes circle.safetensors) with one call,
// without knowing how it was built, and draw samples with their log-densities.
#include <cstdio>
#include <exception>
#include <flowgrad/flowgrad.hpp>
#include <string>

using namespace flowgrad;

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "circle.safetensors";
  try {
    std::unique_ptr<DensityFlow<float>> model = load_density_flow<float>(path);
    model->eval();  // batch norm's running averages were saved with the model
    Generator gen(42);
    const auto [x, log_p] = model->sample_and_log_prob(5, gen);
    std::printf("%s: a flow of %ld layers on %ld dimensions\n", path.c_str(),
                static_cast<long>(model->transform().size()), static_cast<long>(model->dim()));
    for (Index i = 0; i < x.rows(); ++i) {
      std::printf("x =");
      for (Index j = 0; j < x.cols(); ++j) std::printf(" %+.3f", x(i, j));
      std::printf("  log p = %.3f\n", log_p[i]);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "load_and_sample: %s\n", e.what());
    return 1;
  }
}
