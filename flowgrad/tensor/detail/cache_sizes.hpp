#pragma once
// Not installed. The data cache sizes the CPU reports, from which each ISA's gemm chooses its
// cache blocks (tensor/gemm_blocked.cpp). No xsimd here: the kernel files read it through their
// prelude.
#include "flowgrad/tensor/shape.hpp"

namespace flowgrad::detail {

struct CacheSizes {
  Index l1d, l2, l3;  // bytes: L1 data and L2 of one core, L3 as reported (often shared)
};

// Read once, from sysconf(_SC_LEVEL1_DCACHE_SIZE) and its L2 and L3 siblings; a level the system
// does not report (0 or -1, as in some containers) takes the size of a Zen 3 core's: 32 KB,
// 512 KB, 32 MB, the machine the blocks were first tuned on.
const CacheSizes& cache_sizes();

}  // namespace flowgrad::detail
