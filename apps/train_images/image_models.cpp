#include "image_models.hpp"

#include <stdexcept>

#include "flowgrad/flows/actnorm.hpp"

namespace trainimg {

int default_layers(const std::string& model) {
  if (model == "realnvp") return 6;
  if (model == "maf") return 5;
  if (model == "nsf") return 4;
  throw std::invalid_argument("unknown model '" + model + "' (realnvp, maf, nsf)");
}

std::unique_ptr<flowgrad::Composition<float>> build_image_flow(const ImageModelConfig& c,
                                                               flowgrad::Generator& gen) {
  using namespace flowgrad;
  const int layers = c.layers > 0 ? c.layers : default_layers(c.model);
  if (c.model == "maf") {
    MAFConfig m;
    m.dim = c.dim;
    m.layers = layers;
    m.layer.made = {c.hidden, c.hidden_layers, Activation::relu, c.context};
    return make_maf<float>(m, gen);
  }
  default_layers(c.model);  // names an unknown model
  auto flow = std::make_unique<Composition<float>>(c.dim);
  for (int l = 0; l < layers; ++l) {
    flow->add(std::make_unique<Permutation<float>>(c.dim, PermutationMode::random, gen));
    const std::vector<int> mask = AffineCoupling<float>::half_mask(c.dim, 0);
    if (c.model == "realnvp")
      flow->add(std::make_unique<AffineCoupling<float>>(
          mask, CouplingConfig{c.hidden, c.hidden_layers, Activation::relu, c.context}, gen));
    else
      flow->add(std::make_unique<SplineCoupling<float>>(
          mask,
          SplineCouplingConfig{8, c.tail_bound, c.hidden, c.hidden_layers, Activation::relu,
                               c.context},
          gen));
    flow->add(std::make_unique<ActNorm<float>>(c.dim));
  }
  return flow;
}

}  // namespace trainimg
