#pragma once
// What both of train_2d's trainings add to the library's loop: progress output, checkpoints every
// so often, at the end and when SIGINT or SIGTERM stops the run early, and CLI advice when the loss
// stops being finite.
#include <functional>
#include <string>
#include <vector>

#include "checkpoint.hpp"
#include "flowgrad/flows/fit.hpp"

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

// Runs `trainer` from its step to settings.steps. Throws std::runtime_error, naming the step and
// giving settings.hint, when a loss is not finite.
LoopResult run_training_loop(const LoopSettings& settings, flowgrad::Trainer<float>& trainer);

}  // namespace train2d
