#pragma once
// What a model is, as it is stored in a checkpoint's metadata, and how to build it.
#include <memory>
#include <string>

#include "checkpoint.hpp"
#include "flowgrad/flows/models.hpp"

namespace train2d {

struct ModelConfig {
  // Density (train): realnvp, nsf, maf, nsf-ar, planar, radial. Variational (vi): planar,
  // radial, iaf, nsf, nsf-ar. maf and iaf are the same chain, used in opposite directions.
  std::string model = "realnvp";
  flowgrad::Index dim = 2;
  int layers = 8;               // couplings, autoregressive layers, or planar/radial layers
  flowgrad::Index hidden = 64;  // width of the coupling networks' (or MADEs') hidden layers
  int hidden_layers = 2;
  std::string activation = "relu";
  bool batch_norm = true;       // RealNVP: batch norm between couplings
  flowgrad::Index bins = 8;     // NSF, NSF-AR: spline bins per transformed coordinate
  double tail_bound = 4;        // NSF, NSF-AR: the splines act on [-tail_bound, tail_bound]
  flowgrad::Index context = 0;  // width of the context c of p(x | c); 0: unconditional
};

// Every model name either command knows, and whether `model` fits a density (train) or a
// variational (vi) model: throws std::invalid_argument saying which command takes it otherwise.
void check_model_for(const std::string& model, bool density);
// The defaults of the model's builder for what the command line did not set: maf and iaf take
// make_maf's (5 layers, MADE 50 x 2, tanh), nsf and nsf-ar 8 layers.
struct GivenOptions {
  bool layers = false, hidden = false, activation = false;
};
void apply_model_defaults(ModelConfig& config, const GivenOptions& given);

// Throws std::invalid_argument on an unknown model or a value out of range.
void validate(const ModelConfig& config);
// The shortest text that reads back as the same double (so a resumed run gets the same settings).
std::string exact_number(double x);
// One line for progress output: "nsf (8 spline couplings, 8 bins on [-4, 4], ...)".
std::string describe(const ModelConfig& config);
Metadata to_metadata(const ModelConfig& config);
// Reads a config back, throwing std::runtime_error that names the missing or bad key.
ModelConfig config_from_metadata(const Metadata& metadata, const std::string& path);

std::unique_ptr<flowgrad::Composition<float>> build_transform(const ModelConfig& config,
                                                              flowgrad::Generator& gen);

}  // namespace train2d
