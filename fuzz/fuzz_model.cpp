// Whole-model load from any bytes (load_density_flow / load_variational_flow, float and double),
// then log_prob and sampling of what loaded, on a few points.
#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include "flowgrad/flows/registry.hpp"
#include "fuzz_file.hpp"
#include "use_errors.hpp"

namespace {

using namespace flowgrad;

template <Scalar T>
void use(FlowModel<T>& model, bool density) {
  Generator gen(2);
  Tensor<T> x(Shape{3, model.dim()});
  for (Index i = 0; i < x.numel(); ++i) x[i] = static_cast<T>(gen.normal());
  model.eval();
  if (density) {
    auto& m = static_cast<DensityFlow<T>&>(model);
    m.log_prob(x);
    m.sample(3, gen);
  } else {
    auto& q = static_cast<VariationalFlow<T>&>(model);
    q.log_prob(x);
    Tape<T> tape;
    q.sample_and_log_prob(tape, 3, gen);
  }
}

// Loading answers a bad file with std::runtime_error alone; using what loaded, with the errors
// of use_errors.hpp.
template <Scalar T>
void load(const std::string& path) {
  std::unique_ptr<DensityFlow<T>> density;
  try {
    density = load_density_flow<T>(path);
  } catch (const std::runtime_error&) {
  }
  if (density) fuzz::allowing_documented_errors([&] { use(*density, true); });
  std::unique_ptr<VariationalFlow<T>> q;
  try {
    q = load_variational_flow<T>(path);
  } catch (const std::runtime_error&) {
  }
  if (q) fuzz::allowing_documented_errors([&] { use(*q, false); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fuzz::ScratchFile file("model");
  const std::string& path = file.write(data, size);
  load<float>(path);
  load<double>(path);
  return 0;
}
