#pragma once
// What a model is, as it is stored in a checkpoint's metadata, and how to build it.
#include <memory>
#include <string>

#include "checkpoint.hpp"
#include "flowgrad/flows/models.hpp"

namespace train2d {

struct ModelConfig {
  std::string model = "realnvp";  // realnvp, nsf, planar or radial
  flowgrad::Index dim = 2;
  int layers = 8;               // couplings, or planar/radial layers
  flowgrad::Index hidden = 64;  // width of the coupling networks' hidden layers
  int hidden_layers = 2;
  std::string activation = "relu";
  bool batch_norm = true;    // RealNVP: batch norm between couplings
  flowgrad::Index bins = 8;  // NSF: spline bins per transformed coordinate
  double tail_bound = 4;     // NSF: the splines act on [-tail_bound, tail_bound]
};

// Throws std::invalid_argument on an unknown model or a value out of range.
void validate(const ModelConfig& config);
Metadata to_metadata(const ModelConfig& config);
// Reads a config back, throwing std::runtime_error that names the missing or bad key.
ModelConfig config_from_metadata(const Metadata& metadata, const std::string& path);

std::unique_ptr<flowgrad::Composition<float>> build_transform(const ModelConfig& config,
                                                              flowgrad::Generator& gen);

}  // namespace train2d
