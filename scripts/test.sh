#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the whole test suite under CTest.
#   scripts/test.sh [--sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=build
[[ ${1:-} == --sanitize ]] && build_dir=build-sanitize
bash scripts/setup.sh "$@" "$build_dir"
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)"
