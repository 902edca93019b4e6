// A small pool for intra-op parallelism, written for the one property OpenMP's fork/join lacks:
// the caller never waits for a worker to start. At the end of an OpenMP parallel region every
// thread of the team must arrive, so on an oversubscribed machine one descheduled worker stalls
// each kernel for a scheduler time slice (a 2-thread training step measured 100x slower than one
// thread with a single competing process). Here the chunks of a job are claimed one by one, the
// caller claims them too, and it waits only for chunks that a worker has already begun.
#include "flowgrad/tensor/detail/pool.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace flowgrad::detail {
namespace {

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

// A job is published as one 64-bit word: generation (32 bits), chunk count (16), next unclaimed
// chunk (16). Claiming is a compare-and-swap on the whole word, so a worker that wakes late, still
// holding an older generation, can never claim a chunk of a newer job.
struct JobWord {
  static std::uint64_t make(std::uint32_t gen, std::uint32_t chunks, std::uint32_t next) {
    return (std::uint64_t{gen} << 32) | (std::uint64_t{chunks} << 16) | next;
  }
  static std::uint32_t gen(std::uint64_t w) { return static_cast<std::uint32_t>(w >> 32); }
  static std::uint32_t chunks(std::uint64_t w) {
    return static_cast<std::uint32_t>(w >> 16) & 0xffff;
  }
  static std::uint32_t next(std::uint64_t w) { return static_cast<std::uint32_t>(w) & 0xffff; }
};

constexpr int kMaxChunks = 0xffff;
// A worker spins this long for the next job before it sleeps. Waking a sleeping thread takes tens
// of microseconds or more (much more on a virtual machine, where its vCPU may be halted), and the
// caller does not wait for it, so a worker that sleeps through the short serial stretches between
// a training step's parallel kernels never gets a chunk. Time, not a count of pause instructions,
// whose latency differs several-fold between CPU generations.
constexpr auto kSpinTime = std::chrono::microseconds(300);
// The caller's wait for chunks that workers are running: pause this many rounds, then yield.
constexpr int kSpinRounds = 1 << 12;

thread_local bool t_in_chunk = false;

class Pool {
 public:
  ~Pool() {
    stop_.store(true);
    posted_.fetch_add(1);
    posted_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

  void run(int threads, int chunks, void (*fn)(void*, int), void* ctx) {
    if (threads <= 1 || chunks <= 1 || chunks > kMaxChunks || t_in_chunk)
      return serial(chunks, fn, ctx);
    std::unique_lock lock(submit_, std::try_to_lock);
    if (!lock.owns_lock()) return serial(chunks, fn, ctx);
    while (static_cast<int>(workers_.size()) < threads - 1)
      workers_.emplace_back([this] { work(); });
    fn_.store(fn, std::memory_order_relaxed);
    ctx_.store(ctx, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    error_ = nullptr;
    const std::uint32_t gen = ++gen_;
    job_.store(JobWord::make(gen, static_cast<std::uint32_t>(chunks), 0),
               std::memory_order_release);
    // Sequentially consistent with the sleepers' count, so that a worker going to sleep either is
    // counted here or sees the new generation before it waits.
    posted_.store(gen);
    if (sleepers_.load() > 0) posted_.notify_all();
    claim_and_run(gen);
    // Only chunks that a worker has claimed, and so is running, are left.
    for (int spins = 0; done_.load(std::memory_order_acquire) < chunks; ++spins) {
      if (spins < kSpinRounds)
        cpu_relax();
      else
        std::this_thread::yield();
    }
    // Every chunk has finished, so the caller's context may now go: only then can an exception
    // leave (a bad_alloc from a kernel's scratch, say).
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

 private:
  static void serial(int chunks, void (*fn)(void*, int), void* ctx) {
    for (int c = 0; c < chunks; ++c) fn(ctx, c);
  }

  // Claims chunks of job `gen` until none is left, running each.
  void claim_and_run(std::uint32_t gen) {
    std::uint64_t w = job_.load(std::memory_order_acquire);
    while (JobWord::gen(w) == gen && JobWord::next(w) < JobWord::chunks(w)) {
      if (!job_.compare_exchange_weak(w, w + 1, std::memory_order_acq_rel)) continue;
      // A claimed chunk keeps its job alive: fn_ and ctx_ cannot change until it is done.
      t_in_chunk = true;
      try {
        fn_.load(std::memory_order_relaxed)(ctx_.load(std::memory_order_relaxed),
                                            static_cast<int>(JobWord::next(w)));
      } catch (...) {
        const std::lock_guard guard(error_mutex_);
        if (!error_) error_ = std::current_exception();
      }
      t_in_chunk = false;
      done_.fetch_add(1, std::memory_order_release);
      w = job_.load(std::memory_order_acquire);
    }
  }

  void work() {
    std::uint32_t seen = posted_.load(std::memory_order_acquire);
    while (!stop_.load(std::memory_order_relaxed)) {
      std::uint32_t gen = posted_.load(std::memory_order_acquire);
      const auto until = std::chrono::steady_clock::now() + kSpinTime;
      for (int spins = 1; gen == seen; ++spins) {
        cpu_relax();
        gen = posted_.load(std::memory_order_acquire);
        if (spins % 64 == 0 && std::chrono::steady_clock::now() > until) break;
      }
      if (gen == seen) {
        sleepers_.fetch_add(1);
        posted_.wait(seen);
        sleepers_.fetch_sub(1);
        continue;
      }
      seen = gen;
      claim_and_run(gen);
    }
  }

  std::mutex submit_;  // one job at a time
  std::vector<std::thread> workers_;
  std::uint32_t gen_ = 0;
  std::atomic<std::uint64_t> job_{0};
  std::atomic<std::uint32_t> posted_{0};  // the latest generation, what sleeping workers wait on
  std::atomic<int> sleepers_{0};
  std::atomic<int> done_{0};
  std::atomic<void (*)(void*, int)> fn_{nullptr};
  std::atomic<void*> ctx_{nullptr};
  std::atomic<bool> stop_{false};
  std::mutex error_mutex_;
  std::exception_ptr error_;  // the first exception of the running job, rethrown by run()
};

}  // namespace

void run_chunks(int threads, int chunks, void (*fn)(void*, int), void* ctx) {
  static Pool pool;
  pool.run(threads, chunks, fn, ctx);
}

bool in_chunk() { return t_in_chunk; }

}  // namespace flowgrad::detail
