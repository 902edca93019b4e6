#pragma once
// train_2d's checkpoints are the library's flow files (flowgrad/flows/registry.hpp, docs/design.md
// §7): the architecture and the tensors, plus train_2d's own metadata (model_config.cpp's keys and
// the command's: kind, dataset, seed, ...).
#include <memory>
#include <string>

#include "flowgrad/autodiff/io/module_io.hpp"
#include "flowgrad/flows/registry.hpp"

namespace train2d {

using flowgrad::Metadata;

// A DensityFlow or VariationalFlow is saved with save_flow, so that the file alone rebuilds it;
// any other module with save_module. Atomic; throws std::runtime_error naming the path.
void save_checkpoint(const std::string& path, flowgrad::Module<float>& model,
                     const Metadata& metadata);

Metadata read_checkpoint_metadata(const std::string& path);

// Loads the tensors into a model built by the caller (flowgrad::load_module: all or nothing).
void load_checkpoint(const std::string& path, flowgrad::Module<float>& model);

struct LoadedModel {
  Metadata meta;
  std::string name;  // "realnvp", "planar", ... for titles: metadata "model", else "flow"
  std::unique_ptr<flowgrad::DensityFlow<float>> density;  // exactly one of the two is set
  std::unique_ptr<flowgrad::VariationalFlow<float>> variational;
};

// The model a checkpoint holds, rebuilt from the file alone, in eval mode. Files written before
// the architecture was stored (no "flowgrad.architecture") are rebuilt from model_config's keys.
LoadedModel load_model(const std::string& path);

}  // namespace train2d
