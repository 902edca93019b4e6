#pragma once
// The thread pool behind intra-op parallelism (see tensor/threads.hpp). Not installed.

namespace flowgrad::detail {

// Runs fn(ctx, c) once for every chunk c in [0, chunks), on the calling thread and on up to
// threads - 1 pool workers, and returns when all have run. Chunks are claimed one at a time by
// whichever thread is free, so the caller never waits for a worker that has not started: on a
// busy machine, where a worker may not get a core for milliseconds, the caller runs the chunks
// itself and the call costs what one thread would. What a chunk computes must not depend on the
// thread that runs it. Called from inside a chunk, or while another thread is using the pool, it
// runs every chunk on the calling thread. If fn throws, the first exception is rethrown to the
// caller once every chunk has finished.
void run_chunks(int threads, int chunks, void (*fn)(void*, int), void* ctx);

// True while the calling thread runs a chunk: a kernel called from there (a layer inside a fused
// MLP's row block, say) takes its single-threaded path rather than splitting again.
bool in_chunk();

}  // namespace flowgrad::detail
