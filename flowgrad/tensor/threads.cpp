#include "flowgrad/tensor/threads.hpp"

#include <atomic>
#include <stdexcept>
#include <string>

namespace flowgrad {
namespace {
std::atomic<int> g_num_threads{1};
}

void set_num_threads(int n) {
  if (n < 1)
    throw std::invalid_argument("set_num_threads: need at least 1 thread, got " +
                                std::to_string(n));
  g_num_threads.store(n, std::memory_order_relaxed);
}

int num_threads() { return g_num_threads.load(std::memory_order_relaxed); }

}  // namespace flowgrad
