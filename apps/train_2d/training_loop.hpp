#pragma once
// What both of train_2d's trainings add to the library's loop: progress output, checkpoints every
// so often, at the end and when SIGINT or SIGTERM stops the run early, and CLI advice when the loss
// stops being finite.
#include <string>
#include <vector>

#include "checkpoint.hpp"
#include "flowgrad/flows/fit.hpp"

namespace train2d {

struct LoopSettings {
  long steps = 1;
  long log_every = 500;
  long checkpoint_every = 1000;
  bool quiet = false;
  std::string checkpoint;  // empty: save nothing
  std::string hint;        // advice when the loss stops being finite ("try a lower --lr")
};

struct LoopResult {
  long steps_done = 0;
  int signal = 0;  // the signal that stopped the run early, or 0
  double wall_seconds = 0;
  std::vector<float> losses;  // each step's loss
};

// Runs `trainer` to step settings.steps; `model` is what the checkpoints hold. Throws
// std::runtime_error, naming the step and giving settings.hint, when a loss is not finite.
LoopResult run_training_loop(const LoopSettings& settings, flowgrad::Trainer<float>& trainer,
                             flowgrad::Module<float>& model, const Metadata& metadata);

}  // namespace train2d
