#include "progress.hpp"

#include <unistd.h>

#include <cmath>

namespace train2d {

bool is_terminal(std::FILE* f) { return ::isatty(::fileno(f)) == 1; }

Progress::Progress(long total, std::FILE* out, bool terminal, long every, bool quiet, long first)
    : total_(total),
      first_(first),
      out_(out),
      terminal_(terminal),
      quiet_(quiet),
      every_(every > 0 ? every : 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double Progress::steps_per_second(long step) const {
  const double t = elapsed_seconds();
  return t > 0 ? static_cast<double>(step - first_) / t : 0.0;
}

namespace {
std::string clock(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const long s = std::lround(seconds);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}
}  // namespace

std::string Progress::line(long step, double loss) const {
  const double rate = steps_per_second(step);
  const double eta = rate > 0 ? static_cast<double>(total_ - step) / rate : NAN;
  char buf[160];
  std::snprintf(buf, sizeof buf, "step %ld/%ld  loss %.4f  %.0f steps/s  ETA %s", step, total_,
                loss, rate, clock(eta).c_str());
  return buf;
}

void Progress::update(long step, double loss) {
  if (quiet_) return;
  if (terminal_) {
    const auto now = std::chrono::steady_clock::now();
    // Redrawing every step would cost more than a small model's step.
    if (now - last_draw_ < std::chrono::milliseconds(100) && step != total_) return;
    last_draw_ = now;
    constexpr int width = 30;
    const int filled = total_ > 0 ? static_cast<int>(width * step / total_) : width;
    std::string bar(static_cast<std::size_t>(filled), '=');
    if (filled < width) bar += '>' + std::string(static_cast<std::size_t>(width - filled - 1), ' ');
    std::fprintf(out_, "\r[%s] %s\033[K", bar.c_str(), line(step, loss).c_str());
    std::fflush(out_);
  } else if (step % every_ == 0) {
    std::fprintf(out_, "%s\n", line(step, loss).c_str());
    std::fflush(out_);
  }
}

void Progress::finish(long step, double loss) {
  if (quiet_) return;
  if (terminal_) {
    last_draw_ = {};
    update(step, loss);
    std::fprintf(out_, "\n");
  } else if (step % every_ != 0) {
    std::fprintf(out_, "%s\n", line(step, loss).c_str());
  }
  std::fflush(out_);
}

}  // namespace train2d
