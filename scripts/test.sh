#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the whole test suite under CTest, on the widest ISA path
# this CPU has (flowgrad/tensor/isa.hpp). Where that is AVX-512, the whole suite then runs again
# on the AVX2 path (FLOWGRAD_ISA=avx2), so that both paths are tested: the tests take well under
# a minute of the run, the build the rest.
#   scripts/test.sh [--sanitize]
# The release build includes MPI (Open MPI, installed by setup.sh --mpi) and its tests, which run
# two ranks under mpirun; the sanitizer build is built without MPI, so that every other test also
# passes in a build that has none (Open MPI's own allocations would only add sanitizer noise).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=build
setup_args=(--mpi)
if [[ ${1:-} == --sanitize ]]; then
  build_dir=build-sanitize
  setup_args=(--sanitize -DFLOWGRAD_MPI=OFF)
fi
bash scripts/setup.sh "${setup_args[@]:0:1}" "$build_dir" "${setup_args[@]:1}"
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
