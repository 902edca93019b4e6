// The metadata-to-model rebuild: build_flow on any text as "flowgrad.architecture", then the
// model it makes evaluated and sampled on a few points, in both directions of every layer.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "flowgrad/flows/registry.hpp"
#include "use_errors.hpp"

namespace {

using namespace flowgrad;

// Small enough for libFuzzer's 2 GB default limit with room to spare; a bigger claim is refused.
constexpr std::size_t budget = std::size_t{64} << 20;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::unique_ptr<Composition<float>> chain;
  try {
    chain = build_flow<float>(text, budget);
  } catch (const std::invalid_argument&) {
    return 0;  // a clear error
  }
  fuzz::allowing_documented_errors([&] {
    DensityFlow<float> model(std::move(chain));
    Generator gen(1);
    const Index d = model.dim();
    Tensor<float> x(Shape{3, d});
    for (Index i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(gen.normal());
    model.log_prob(x);  // training mode: batch norm and ActNorm see a batch
    model.eval();
    model.log_prob(x);
    model.sample(3, gen);
  });
  return 0;
}
