#include "training_loop.hpp"

#include <cmath>
#include <stdexcept>

#include "interrupt.hpp"
#include "progress.hpp"

namespace train2d {

LoopResult run_training_loop(const LoopSettings& s, flowgrad::Module<float>& model,
                             const Metadata& metadata, const std::function<double(long)>& step) {
  LoopResult r;
  r.losses.reserve(static_cast<std::size_t>(s.steps));
  Progress progress(s.steps, stderr, is_terminal(stderr), s.log_every, s.quiet);
  InterruptGuard interrupts;
  double loss = 0;
  for (long i = 1; i <= s.steps; ++i) {
    loss = step(i);
    if (!std::isfinite(loss))
      throw std::runtime_error("the loss became " + std::to_string(loss) + " at step " +
                               std::to_string(i) + "; " + s.hint);
    r.losses.push_back(static_cast<float>(loss));
    r.steps_done = i;
    progress.update(i, loss);
    r.signal = InterruptGuard::signal_received();
    if (!s.checkpoint.empty() && (i % s.checkpoint_every == 0 || r.signal != 0 || i == s.steps))
      save_checkpoint(s.checkpoint, model, metadata);
    if (r.signal != 0) break;
  }
  progress.finish(r.steps_done, loss);
  r.wall_seconds = progress.elapsed_seconds();
  return r;
}

}  // namespace train2d
