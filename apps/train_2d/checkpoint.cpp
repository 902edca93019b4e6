#include "checkpoint.hpp"

#include <stdexcept>

#include "model_config.hpp"

namespace train2d {

void save_checkpoint(const std::string& path, flowgrad::Module<float>& model,
                     const Metadata& metadata) {
  if (auto* flow = dynamic_cast<flowgrad::FlowModel<float>*>(&model))
    flowgrad::save_flow(path, *flow, metadata);
  else
    flowgrad::save_module(path, model, metadata);
}

Metadata read_checkpoint_metadata(const std::string& path) { return flowgrad::read_metadata(path); }

void load_checkpoint(const std::string& path, flowgrad::Module<float>& model) {
  flowgrad::load_module(path, model);
}

namespace {

// Checkpoints of train_2d before the library stored architectures: kind and model_config's keys.
LoadedModel load_legacy(const std::string& path, LoadedModel m) {
  const ModelConfig config = config_from_metadata(m.meta, path);
  const auto kind = m.meta.find("kind");
  const std::string k = kind == m.meta.end() ? "density" : kind->second;
  flowgrad::Generator gen(0);  // initial values, all overwritten by the checkpoint
  if (k == "density") {
    m.density = std::make_unique<flowgrad::DensityFlow<float>>(build_transform(config, gen));
    load_checkpoint(path, *m.density);
  } else if (k == "variational") {
    m.variational =
        std::make_unique<flowgrad::VariationalFlow<float>>(build_transform(config, gen));
    load_checkpoint(path, *m.variational);
  } else {
    throw std::runtime_error(path + ": metadata 'kind' is '" + k + "' (density or variational)");
  }
  return m;
}

}  // namespace

LoadedModel load_model(const std::string& path) {
  LoadedModel m;
  m.meta = read_checkpoint_metadata(path);
  const auto name = m.meta.find("model");
  m.name = name == m.meta.end() ? "flow" : name->second;
  if (!m.meta.count("flowgrad.architecture")) {
    m = load_legacy(path, std::move(m));
  } else if (const auto kind = m.meta.find("flowgrad.model");
             kind != m.meta.end() && kind->second == "variational") {
    m.variational = flowgrad::load_variational_flow<float>(path);
  } else {
    m.density = flowgrad::load_density_flow<float>(path);  // names the file on any other value
  }
  if (m.density) m.density->eval();
  if (m.variational) m.variational->eval();
  return m;
}

}  // namespace train2d
