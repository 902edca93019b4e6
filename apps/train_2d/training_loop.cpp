#include "training_loop.hpp"

#include <algorithm>
#include <stdexcept>

#include "interrupt.hpp"
#include "progress.hpp"

namespace train2d {

LoopResult run_training_loop(const LoopSettings& s, flowgrad::Trainer<float>& trainer) {
  LoopResult r;
  r.losses = s.earlier_losses;
  r.losses.reserve(static_cast<std::size_t>(std::max(s.steps, trainer.step())));
  r.first_step = trainer.step();
  r.steps_done = trainer.step();
  Progress progress(s.steps, stderr, is_terminal(stderr), s.log_every, s.quiet, r.first_step);
  InterruptGuard interrupts;
  double loss = 0;
  flowgrad::FitCallbacks callbacks;
  callbacks.every = 1;
  callbacks.on_progress = [&](const flowgrad::FitProgress& p) {
    loss = p.loss;
    r.losses.push_back(static_cast<float>(p.loss));
    r.steps_done = p.step;
    progress.update(p.step, p.loss);
    r.signal = InterruptGuard::signal_received();
    if (s.save && (p.step % s.checkpoint_every == 0 || r.signal != 0 || p.step == s.steps))
      s.save(r);
    return r.signal != 0 ? flowgrad::FitAction::stop : flowgrad::FitAction::proceed;
  };
  try {
    trainer.run_to(s.steps, callbacks);
  } catch (const flowgrad::NonFiniteLossError& e) {
    throw std::runtime_error("step " + std::to_string(e.step()) + ": " + e.reason() +
                             " (the model is kept as after step " + std::to_string(e.step() - 1) +
                             "); " + s.hint);
  }
  progress.finish(r.steps_done, loss);
  r.wall_seconds = progress.elapsed_seconds();
  return r;
}

}  // namespace train2d
