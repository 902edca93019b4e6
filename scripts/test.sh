#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the whole test suite under CTest, on the widest ISA path
# this CPU has (flowgrad/tensor/isa.hpp). Where that is AVX-512, the whole suite then runs again
# on the AVX2 path (FLOWGRAD_ISA=avx2), so that both paths are tested: the tests take well under
# a minute of the run, the build the rest.
#   scripts/test.sh [--sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=build
[[ ${1:-} == --sanitize ]] && build_dir=build-sanitize
bash scripts/setup.sh "$@" "$build_dir"
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)"

# The second path, where there is one.
if grep -q '^FLOWGRAD_NATIVE:BOOL=ON' "$build_dir/CMakeCache.txt"; then
  echo "test.sh: FLOWGRAD_NATIVE build: one ISA path compiled, no second run"
  exit 0
fi
missing=""
for flag in avx512f avx512bw avx512cd avx512dq avx512vl; do
  grep -qw "$flag" /proc/cpuinfo || missing+=" $flag"
done
if [[ -n $missing ]]; then
  echo "test.sh: SKIPPED the second ISA path: this CPU lacks$missing, so the run above tested"
  echo "test.sh: the AVX2 path only; the AVX-512 path was NOT tested on this machine."
  exit 0
fi
echo "test.sh: the run above tested the AVX-512 path; now the same suite on the AVX2 path"
FLOWGRAD_ISA=avx2 ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)"
echo "test.sh: both ISA paths (AVX-512, AVX2) passed"
