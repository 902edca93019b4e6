#include "flowgrad/flows/fit_checkpoint.hpp"

#include <charconv>
#include <stdexcept>

#include "flowgrad/flows/registry.hpp"

namespace flowgrad {

namespace {

constexpr const char* key_step = "fit.step";
constexpr const char* key_batch_state = "fit.batch_state";

template <Scalar T>
void save(const std::string& path, FlowModel<T>& model, Trainer<T>& trainer,
          const Metadata& extra) {
  Metadata meta = flow_metadata(model, extra);
  meta[key_step] = std::to_string(trainer.step());
  meta[key_batch_state] = trainer.batch_state();
  save_training_checkpoint(path, model, trainer.optimizer(), meta);
}

const std::string& find(const std::string& path, const Metadata& meta, const char* key) {
  const auto it = meta.find(key);
  if (it == meta.end())
    throw std::runtime_error(path + ": metadata has no '" + key +
                             "' (not a checkpoint written by save_trainer)");
  return it->second;
}

long parse_step(const std::string& path, const std::string& text) {
  long step = -1;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), step);
  if (ec != std::errc() || end != text.data() + text.size() || step < 0)
    throw std::runtime_error(path + ": metadata '" + key_step + "' is '" + text +
                             "', not a step count");
  return step;
}

}  // namespace

template <Scalar T>
void save_trainer(const std::string& path, DensityTrainer<T>& trainer, const Metadata& extra) {
  save(path, trainer.model(), trainer, extra);
}

template <Scalar T>
void save_trainer(const std::string& path, VariationalTrainer<T>& trainer, const Metadata& extra) {
  save(path, trainer.model(), trainer, extra);
}

template <Scalar T>
Metadata resume_trainer(const std::string& path, Trainer<T>& trainer) {
  const Metadata meta = read_metadata(path);
  const long step = parse_step(path, find(path, meta, key_step));
  // The batch state is the one part checked only by setting it: set it first, and put the old
  // one back if the model or the optimizer then refuses the file.
  const std::string old_batch_state = trainer.batch_state();
  try {
    trainer.set_batch_state(find(path, meta, key_batch_state));
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path + ": metadata '" + key_batch_state + "': " + e.what());
  }
  try {
    load_training_checkpoint(path, trainer.module(), trainer.optimizer());
  } catch (...) {
    trainer.set_batch_state(old_batch_state);
    throw;
  }
  trainer.set_step(step);
  return meta;
}

#define FLOWGRAD_INSTANTIATE(T)                                                            \
  template void save_trainer(const std::string&, DensityTrainer<T>&, const Metadata&);     \
  template void save_trainer(const std::string&, VariationalTrainer<T>&, const Metadata&); \
  template Metadata resume_trainer(const std::string&, Trainer<T>&);
FLOWGRAD_INSTANTIATE(float)
FLOWGRAD_INSTANTIATE(double)
#undef FLOWGRAD_INSTANTIATE

}  // namespace flowgrad
