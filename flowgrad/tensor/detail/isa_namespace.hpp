#pragma once
// Not installed. The namespace that holds one instruction set's kernels: every function, template
// and inline helper compiled for an ISA (simd.hpp, unary_rules.hpp, the kernel files) lives in
// flowgrad::FLOWGRAD_ISA_NS, so the AVX-512 and the AVX2 copies of, say, simd::zip<float> have
// different symbol names and the linker can never keep the AVX-512 one for an AVX2 caller (both
// would otherwise be weak definitions of one name, and it keeps either). CMake defines
// FLOWGRAD_KERNEL_ISA_AVX512 for the AVX-512 copies of the kernel files and FLOWGRAD_NATIVE_BUILD
// for a FLOWGRAD_NATIVE=ON build (one copy, for the build machine); every other file compiles
// with the portable -march=x86-64-v3, as the AVX2 kernels do.
#if defined(FLOWGRAD_KERNEL_ISA_AVX512)
#define FLOWGRAD_ISA_NS isa_avx512
#elif defined(FLOWGRAD_NATIVE_BUILD)
#define FLOWGRAD_ISA_NS isa_native
#else
#define FLOWGRAD_ISA_NS isa_avx2
#endif
