#pragma once
// Not installed. The first include of every kernel file (those CMake compiles once per ISA: see
// flowgrad/tensor/CMakeLists.txt).
//
// The AVX-512 copy of a kernel file is compiled with -mavx512f etc., and every inline function or
// template it instantiates from a header shared with other files (std::copy<float*>, a
// Tensor<float> method, ...) is a weak symbol that the linker may keep for the whole program.
// Compiled with AVX-512 enabled, that copy could hold AVX-512 instructions and crash an AVX2-only
// CPU wherever any file calls it. So those headers are read here, before anything else, with
// AVX-512 switched off: GCC gives a function (and a template's instantiations) the target options
// in force where it is defined, so what they emit in this file is the portable code that every
// other file emits too. Only the code written for the ISA (xsimd, included by simd.hpp after this,
// and the kernels, in namespace flowgrad::FLOWGRAD_ISA_NS) is compiled for AVX-512.
// tests/isa_leak_check.sh disassembles the library and fails if an AVX-512 instruction appears
// in any function outside that namespace and xsimd's AVX-512 code.
#include "flowgrad/tensor/detail/isa_namespace.hpp"

// g++ only: clang builds only the fuzz targets, which run where they are built, and has no such
// pragma (-Werror would make it fatal).
#if defined(FLOWGRAD_KERNEL_ISA_AVX512) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC target("no-avx512f")
#endif

// Everything the kernel files and xsimd 8.1 include from the standard library ...
#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cassert>
#include <cmath>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <memory>
#include <new>
#include <ostream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

// ... xsimd's scalar functions, plain inline functions rather than templates on the architecture,
// and so shared by name with the AVX2 files (its other such functions: see simd.hpp) ...
#include <xsimd/arch/xsimd_scalar.hpp>

// ... and every flowgrad header they include that is not compiled for an ISA.
#include "flowgrad/tensor/activation.hpp"
#include "flowgrad/tensor/detail/adam_update.hpp"
#include "flowgrad/tensor/detail/cache_sizes.hpp"
#include "flowgrad/tensor/detail/fused.hpp"
#include "flowgrad/tensor/detail/fused_block.hpp"
#include "flowgrad/tensor/detail/gemm.hpp"
#include "flowgrad/tensor/detail/kernel_table.hpp"
#include "flowgrad/tensor/detail/pool.hpp"
#include "flowgrad/tensor/detail/spline.hpp"
#include "flowgrad/tensor/gemm_options.hpp"
#include "flowgrad/tensor/ops.hpp"
#include "flowgrad/tensor/shape.hpp"
#include "flowgrad/tensor/tensor.hpp"
#include "flowgrad/tensor/threads.hpp"

#if defined(FLOWGRAD_KERNEL_ISA_AVX512) && !defined(__clang__)
#pragma GCC pop_options
#endif
