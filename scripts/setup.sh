#!/usr/bin/env bash
# Installs what flowgrad needs from Debian (only what is missing), then configures and builds.
#   scripts/setup.sh [--sanitize] [--fuzz] [--mpi] [--torch] [--fashion-mnist] [BUILD_DIR] [extra cmake args...]
# --sanitize builds with AddressSanitizer and UndefinedBehaviorSanitizer (default dir build-sanitize);
# --fuzz installs clang and libFuzzer and builds the library and fuzz/'s targets with them, ASan and
# UBSan (default dir build-fuzz; scripts/fuzz.sh runs them);
# --mpi installs Open MPI and builds with -DFLOWGRAD_MPI=ON: flowgrad::mpi, its tests (mpi_*) and
# train_2d / train_images that train data-parallel under mpirun;
# --torch also installs python3-torch for bench/compare_pytorch.py; --fashion-mnist installs
# Debian's dataset-fashion-mnist (IDX files in /usr/share/datasets/fashion-mnist) for train_images.
# FLOWGRAD_JOBS=n sets the build's parallel jobs (default: the number of cores).
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=0
fuzz=0
torch=0
fashion=0
mpi=0
while [[ $# -gt 0 && $1 == --* ]]; do
  case $1 in
    --sanitize) sanitize=1 ;;
    --fuzz) fuzz=1 ;;
    --torch) torch=1 ;;
    --fashion-mnist) fashion=1 ;;
    --mpi) mpi=1 ;;
    *) echo "setup.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
default_dir=build
[[ $sanitize == 1 ]] && default_dir=build-sanitize
[[ $fuzz == 1 ]] && default_dir=build-fuzz
build_dir=${1:-$default_dir}
[[ $# -gt 0 ]] && shift

packages=(cmake g++ make libxsimd-dev xtl-dev doctest-dev libbenchmark-dev libopenblas-dev
          libcli11-dev nlohmann-json3-dev libcairo2-dev pkg-config zlib1g-dev)
[[ $torch == 1 ]] && packages+=(python3-torch python3-numpy)
[[ $fashion == 1 ]] && packages+=(dataset-fashion-mnist)
[[ $mpi == 1 ]] && packages+=(libopenmpi-dev openmpi-bin)
# Debian 12's clang is 14; libFuzzer's runtime comes with its compiler-rt.
[[ $fuzz == 1 ]] && packages+=(clang-14 libclang-rt-14-dev libfuzzer-14-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [[ $(id -u) -ne 0 ]] && sudo_cmd=sudo
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cmake_args=(-S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release)
if [[ $sanitize == 1 ]]; then
  # Benchmarks are not worth sanitizing; the tests are.
  cmake_args+=(-DFLOWGRAD_SANITIZE=ON -DFLOWGRAD_BUILD_BENCH=OFF)
fi
[[ $mpi == 1 ]] && cmake_args+=(-DFLOWGRAD_MPI=ON)
if [[ $fuzz == 1 ]]; then
  # Optimised with debug information, as fuzzers usually are: fast, and stack traces with lines.
  cmake_args+=(-DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLOWGRAD_FUZZ=ON
               -DFLOWGRAD_BUILD_TESTS=OFF -DFLOWGRAD_BUILD_BENCH=OFF -DFLOWGRAD_BUILD_APPS=OFF)
fi
cmake "${cmake_args[@]}" "$@" >/dev/null
cmake --build "$build_dir" -j "${FLOWGRAD_JOBS:-$(nproc)}"
