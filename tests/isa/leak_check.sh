#!/usr/bin/env bash
# The portable build must run on a CPU without AVX-512: fails if any function in the given objects
# or archives holds an AVX-512 instruction (EVEX-encoded, or on an opmask register) unless it is
# code compiled for AVX-512 on purpose: flowgrad's kernels in namespace flowgrad::isa_avx512
# (flowgrad/tensor/detail/isa_namespace.hpp) or xsimd's templates for an AVX-512 architecture,
# whose names no AVX2 caller can reach. Anything else (an inline function or template from a
# shared header, compiled in an AVX-512 file) could be the one copy the linker keeps.
# Also fails if no AVX-512 code is found at all, so that the check cannot pass by finding nothing.
#   tests/isa/leak_check.sh LIBRARY_OR_OBJECT...
set -euo pipefail
objdump -d -w -C "$@" | awk '
  # A function: "0000000000000000 <name>:".
  /^[0-9a-f]+ <.*>:$/ { fn = substr($0, index($0, "<") + 1); fn = substr(fn, 1, length(fn) - 2); next }
  # An instruction: "  addr:<TAB>bytes<TAB>mnemonic operands".
  /^ *[0-9a-f]+:\t/ {
    n = split($0, f, "\t")
    if (n < 3) next
    bytes = f[2]; text = f[3]
    evex = bytes ~ /^((26|2e|36|3e|64|65|67) )*62 / || text ~ /%(k[0-7]|zmm|[xy]mm(1[6-9]|2[0-9]|3[01]))/
    if (!evex) next
    if (fn ~ /isa_avx512|xsimd::avx512/) { ok[fn] = 1; next }
    if (!(fn in bad)) { bad[fn] = text; nbad++ }
  }
  END {
    for (g in ok) nok++
    for (g in bad) printf "AVX-512 outside its namespace: %s (e.g. %s)\n", g, bad[g]
    if (nbad) { printf "%d function(s) outside flowgrad::isa_avx512 hold AVX-512 code\n", nbad; exit 1 }
    if (!nok) { print "no AVX-512 code found: were the AVX-512 kernels built?"; exit 1 }
    printf "AVX-512 code in %d functions, all in flowgrad::isa_avx512 or xsimd AVX-512 code\n", nok
  }'
