#pragma once
// Training progress: a redrawn bar on a terminal, plain periodic lines otherwise (logs, CI).
#include <chrono>
#include <cstdio>
#include <string>

namespace train2d {

class Progress {
 public:
  // `total` steps; `every` is the step interval of plain lines; quiet prints nothing. A resumed
  // run starts after `first` steps already done, which its rate does not count.
  Progress(long total, std::FILE* out, bool terminal, long every, bool quiet = false,
           long first = 0);
  void update(long step, double loss);
  // Ends the bar's line (or prints the last line) with the final figures.
  void finish(long step, double loss);
  double steps_per_second(long step) const;
  double elapsed_seconds() const;

 private:
  std::string line(long step, double loss) const;
  long total_;
  long first_;
  std::FILE* out_;
  bool terminal_, quiet_;
  long every_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// True when `f` is attached to a terminal.
bool is_terminal(std::FILE* f);

}  // namespace train2d
