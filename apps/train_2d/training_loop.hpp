#pragma once
// What both of train_2d's trainings add to the library's loop: progress output, checkpoints every
// so often, at the end and when SIGINT or SIGTERM stops the run early, and CLI advice when the loss
// stops being finite.
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "checkpoint.hpp"
#include "flowgrad/flows/fit.hpp"
#include "flowgrad/flows/fit_checkpoint.hpp"
#include "ranks.hpp"

namespace train2d {

struct LoopResult {
  long first_step = 0;  // steps done before this run (a resumed run's)
  long steps_done = 0;  // the trainer's step at the end
  int signal = 0;       // the signal that stopped the run early, or 0
  double wall_seconds = 0;
  std::vector<float> losses;  // each step's loss from step 1, a resumed run's earlier ones first
};

struct LoopSettings {
  long steps = 1;  // the step to run to
  long log_every = 500;
  long checkpoint_every = 1000;
  bool quiet = false;
  std::string hint;  // advice when the loss stops being finite ("try a lower --lr")
  // Writes a checkpoint of the run so far (empty: nothing is saved): called every
  // checkpoint_every steps, at the last step and when a signal stops the run.
  std::function<void(const LoopResult& so_far)> save;
  std::vector<float> earlier_losses;  // a resumed run's losses up to the trainer's step
};

// "step,loss" lines, the losses to float precision (9 digits) so that a resumed run reads them back
// exactly. loss_csv_beside: the loss.csv in a checkpoint's directory ("" for "").
void write_loss_csv(const std::string& path, const std::vector<float>& losses);
std::string loss_csv_beside(const std::string& checkpoint);
// The first `steps` losses of a loss.csv; throws std::runtime_error naming the file and line if it
// has fewer or a line is not "<step>,<loss>".
std::vector<float> read_loss_csv(const std::string& path, long steps);

// A command's loop settings (steps, log_every, checkpoint_every and quiet from its options), with
// a save that writes loss.csv beside `checkpoint` and then the trainer's whole state into it, so
// that a checkpoint at step k always finds k losses beside it. An empty checkpoint saves nothing.
template <class Options, class TrainerType>
LoopSettings loop_settings(const Options& opt, std::string hint, TrainerType& trainer,
                           const std::string& checkpoint, const Metadata& metadata) {
  LoopSettings s;
  s.steps = opt.steps;
  s.log_every = opt.log_every;
  s.checkpoint_every = opt.checkpoint_every;
  s.quiet = opt.quiet;
  s.hint = std::move(hint);
  if (!checkpoint.empty())
    s.save = [&trainer, checkpoint, metadata](const LoopResult& so_far) {
      if (is_root()) write_loss_csv(loss_csv_beside(checkpoint), so_far.losses);
      flowgrad::save_trainer(checkpoint, trainer, metadata);  // every rank: rank 0 writes
    };
  return s;
}

// Runs `trainer` from its step to settings.steps. Throws std::runtime_error, naming the step and
// giving settings.hint, when a loss is not finite.
LoopResult run_training_loop(const LoopSettings& settings, flowgrad::Trainer<float>& trainer);

}  // namespace train2d
