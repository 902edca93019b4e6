#include "flowgrad/flows/fit_checkpoint.hpp"

#include <charconv>
#include <stdexcept>

#include "flowgrad/flows/registry.hpp"

namespace flowgrad {

namespace {

constexpr const char* key_step = "fit.step";
constexpr const char* key_batch_state = "fit.batch_state";
constexpr const char* key_ranks = "fit.ranks";

// Rank r > 0's batch state, when each rank has its own.
std::string rank_key(int r) { return std::string(key_batch_state) + ".rank" + std::to_string(r); }

// Data-parallel: every rank calls this; rank 0 gathers the others' batch states and alone writes.
template <Scalar T>
void save(const std::string& path, FlowModel<T>& model, Trainer<T>& trainer,
          const Metadata& extra) {
  Metadata meta = flow_metadata(model, extra);
  meta[key_step] = std::to_string(trainer.step());
  meta[key_batch_state] = trainer.batch_state();
  if (DataParallel<T>* dp = trainer.data_parallel()) {
    Collective& c = dp->collective();
    if (trainer.batch_state_per_rank()) {
      const std::vector<std::string> states = c.gather(trainer.batch_state());
      for (std::size_t r = 1; r < states.size(); ++r)
        meta[rank_key(static_cast<int>(r))] = states[r];
      meta[key_ranks] = std::to_string(c.size());
    }
    if (!c.is_root()) return;
  }
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
  // Batches drawn per rank continue exactly only with as many ranks as wrote the file.
  const int ranks = trainer.data_parallel() ? trainer.data_parallel()->collective().size() : 1;
  const int rank = trainer.data_parallel() ? trainer.data_parallel()->collective().rank() : 0;
  const auto written = meta.find(key_ranks);
  const std::string wrote = written == meta.end() ? "1" : written->second;
  if (trainer.batch_state_per_rank() && wrote != std::to_string(ranks))
    throw std::runtime_error(path + ": written by " + wrote +
                             " data-parallel ranks, each drawing its own batches; resume it with " +
                             wrote + " ranks to continue the run exactly (now " +
                             std::to_string(ranks) + ")");
  const char* state_key = key_batch_state;
  const std::string own_key = rank_key(rank);
  if (trainer.batch_state_per_rank() && rank > 0) state_key = own_key.c_str();
  // The batch state is the one part checked only by setting it: set it first, and put the old
  // one back if the model or the optimizer then refuses the file.
  const std::string old_batch_state = trainer.batch_state();
  try {
    trainer.set_batch_state(find(path, meta, state_key));
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path + ": metadata '" + state_key + "': " + e.what());
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
