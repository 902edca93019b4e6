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

// Sets the number of threads; n must be >= 1 (std::invalid_argument otherwise). It should not
// exceed the cores free for this process: the kernels' threads wait for each other by spinning
// (OpenMP's default wait policy, tunable with OMP_WAIT_POLICY), which is fast on idle cores and
// slow on oversubscribed ones. Safe to call at any time; a kernel already running keeps the count
// it started with.
void set_num_threads(int n);

// The current setting (1 by default).
int num_threads();

}  // namespace flowgrad
