#pragma once
// Which instruction set the kernels run (docs/design.md §2). The portable build compiles the hot
// kernels (gemm, the fused bias + activation passes, elementwise ops, reductions, Adam) twice, for
// AVX2 + FMA and for AVX-512 (F, BW, CD, DQ, VL), and on first use picks the widest one the CPU
// supports. A FLOWGRAD_NATIVE=ON build compiles them once, for the build machine.
//
// The environment variable FLOWGRAD_ISA=avx2 or avx512, read on first use, asks for one path; a
// value this build or this CPU cannot run is reported on stderr and the widest available path is
// used instead (so one script can set it on every machine). set_isa() asks from code and throws.
//
// Results of the two paths differ by float rounding only (vector widths and cache blocks change
// the order of additions); within one path they are bit-identical at any thread count.
#include <string>

namespace flowgrad {

enum class Isa { avx2, avx512 };

// "avx2" or "avx512".
const char* to_string(Isa isa);

// The path the kernels run now.
Isa active_isa();

// Whether this build has the path and this CPU (and its OS) can run it.
bool isa_available(Isa isa);

// Runs the kernels on `isa` from now on; std::invalid_argument, naming what is missing, when
// !isa_available(isa). Not to be called while another thread runs kernels.
void set_isa(Isa isa);

// "avx2" or "avx512" to an Isa; std::invalid_argument for anything else.
Isa isa_from_string(const std::string& name);

}  // namespace flowgrad
