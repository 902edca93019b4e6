#pragma once
// Intra-op parallelism: how many threads the large kernels (gemm, elementwise ops, reductions) may
// split their work between. The setting is process-wide and defaults to 1, so flowgrad is
// single-threaded unless asked. Each kernel splits only above a size where the split pays; below
// it, and always at 1 thread, the kernel runs on the calling thread and never enters a parallel
// region.
//
// Results: gemm, elementwise ops and the per-row / per-column reductions give bit-identical results
// at any thread count. A sum of a whole tensor to one value (sum, mean, and the gradient of a
// broadcast [1, 1]) adds per-thread partial sums, so its rounding differs slightly from the
// 1-thread result (it is still deterministic for a given thread count).

namespace flowgrad {

// Sets the number of threads; n must be >= 1 (std::invalid_argument otherwise). The n - 1 helper
// threads are started on first use. Between kernels they spin for a few tens of microseconds, then
// sleep; a kernel never waits for a helper that has not started, so on a busy machine it runs at
// one thread's speed rather than slower. Safe to call at any time; a kernel already running keeps
// the count it started with.
void set_num_threads(int n);

// The current setting (1 by default).
int num_threads();

}  // namespace flowgrad
