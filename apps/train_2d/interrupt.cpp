#include "interrupt.hpp"

#include <csignal>

namespace train2d {

namespace {
volatile std::sig_atomic_t received = 0;
struct sigaction previous_int, previous_term;
extern "C" void on_signal(int sig) { received = sig; }
}  // namespace

InterruptGuard::InterruptGuard() {
  received = 0;
  struct sigaction sa = {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &previous_int);
  sigaction(SIGTERM, &sa, &previous_term);
}

InterruptGuard::~InterruptGuard() {
  sigaction(SIGINT, &previous_int, nullptr);
  sigaction(SIGTERM, &previous_term, nullptr);
}

int InterruptGuard::signal_received() { return received; }

}  // namespace train2d
