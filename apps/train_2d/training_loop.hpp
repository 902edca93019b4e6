#pragma once
// The loop both trainers share: steps with progress output, a check that the loss stays finite,
// and checkpoints every so often, at the end, and when SIGINT or SIGTERM stops the run early.
#include <functional>
#include <string>
#include <vector>

#include "checkpoint.hpp"

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

// Calls step(i) for i = 1..steps; step returns that step's loss. Throws std::runtime_error when a
// loss is not finite.
LoopResult run_training_loop(const LoopSettings& settings, flowgrad::Module<float>& model,
                             const Metadata& metadata, const std::function<double(long)>& step);

}  // namespace train2d
