#pragma once
// SIGINT and SIGTERM during training: the handler only raises a flag, and the training loop saves
// a checkpoint and stops at the end of the step it is in.
namespace train2d {

class InterruptGuard {
 public:
  InterruptGuard();   // installs the handlers
  ~InterruptGuard();  // restores the previous ones
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;
  // 0 while running; the signal number once one arrived.
  static int signal_received();
};

}  // namespace train2d
