#include "training_loop.hpp"

#include <algorithm>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "atomic_file.hpp"
#include "interrupt.hpp"
#include "progress.hpp"
#include "ranks.hpp"

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
    // Data-parallel ranks stop together: they agree on it every few steps (a signal from mpirun
    // reaches them at different steps).
    if (ranks() != nullptr) {
      constexpr long agree_every = 20;
      if (p.step % agree_every == 0 || p.step == s.steps)
        r.signal = all_ranks_agree_to_stop(r.signal != 0) ? (r.signal != 0 ? r.signal : SIGINT) : 0;
      else
        r.signal = 0;
    }
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

std::string loss_csv_beside(const std::string& checkpoint) {
  if (checkpoint.empty()) return {};
  return (std::filesystem::path(checkpoint).parent_path() / "loss.csv").string();
}

void write_loss_csv(const std::string& path, const std::vector<float>& losses) {
  std::string text = "step,loss\n";
  char buf[64];
  for (std::size_t i = 0; i < losses.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%zu,%.9g\n", i + 1, static_cast<double>(losses[i]));
    text += buf;
  }
  write_file_atomic(path, text);
}

std::vector<float> read_loss_csv(const std::string& path, long steps) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot be read (a resumed run continues its losses)");
  std::vector<float> losses;
  std::string line;
  std::getline(in, line);
  if (line != "step,loss") throw std::runtime_error(path + ": line 1 is not 'step,loss'");
  for (long step = 1; step <= steps; ++step) {
    if (!std::getline(in, line))
      throw std::runtime_error(path + ": has the losses of " + std::to_string(step - 1) +
                               " steps; the checkpoint is at step " + std::to_string(steps));
    const auto comma = line.find(',');
    float loss = 0;
    const char* end = line.data() + line.size();
    const auto [at, ec] = comma == std::string::npos
                              ? std::from_chars_result{line.data(), std::errc::invalid_argument}
                              : std::from_chars(line.data() + comma + 1, end, loss);
    if (ec != std::errc() || at != end || line.substr(0, comma) != std::to_string(step))
      throw std::runtime_error(path + ": line " + std::to_string(step + 1) + " is not '" +
                               std::to_string(step) + ",<loss>'");
    losses.push_back(loss);
  }
  return losses;
}

}  // namespace train2d
