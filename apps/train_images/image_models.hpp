#pragma once
// The flows train_images fits to 784-pixel images, built from the library's layers.
#include <memory>
#include <string>

#include "flowgrad/flows/models.hpp"

namespace trainimg {

struct ImageModelConfig {
  std::string model = "realnvp";  // realnvp, maf or nsf
  flowgrad::Index dim = 784;
  int layers = 0;  // 0: the model's default (realnvp 6, maf 5, nsf 4)
  flowgrad::Index hidden = 1024;
  int hidden_layers = 2;
  flowgrad::Index context = 0;  // 10 for a class-conditional model (one-hot labels)
  double tail_bound = 3;        // nsf: the logit of p in [0.05, 0.95] lies in +-2.95
};

// realnvp: per layer a seeded random permutation of the pixels, an affine coupling (half the
//          permuted pixels condition the other half; MLP hidden x hidden_layers, ReLU) and ActNorm;
// maf:     make_maf (random permutations between layers), MADE with ReLU;
// nsf:     per layer a random permutation and a rational-quadratic spline coupling (8 bins on
//          +-tail_bound), then ActNorm.
// Throws std::invalid_argument on an unknown model or a bad setting.
std::unique_ptr<flowgrad::Composition<float>> build_image_flow(const ImageModelConfig& config,
                                                               flowgrad::Generator& gen);
int default_layers(const std::string& model);

}  // namespace trainimg
