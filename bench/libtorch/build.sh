#!/usr/bin/env bash
# Builds bench/libtorch/realnvp_peer.cpp (the LibTorch peer of bench/compare_pytorch.py) against
# Debian's libtorch-dev, which it installs when missing:
#
#   bash bench/libtorch/build.sh [OUTPUT]      # default build/bench/realnvp_peer
#
# Not part of the CMake build: LibTorch is a benchmark peer, never a dependency of flowgrad.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/../../build/bench/realnvp_peer}"
if ! dpkg -s libtorch-dev > /dev/null 2>&1; then
  sudo_cmd=""
  [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
  $sudo_cmd apt-get install -y -q libtorch-dev
fi
mkdir -p "$(dirname "$out")"
# Release flags as a user of LibTorch would build; the model's time is in LibTorch's own kernels.
g++ -std=c++17 -O2 -DNDEBUG "$here/realnvp_peer.cpp" -o "$out" \
  -I/usr/include/torch/csrc/api/include -ltorch -ltorch_cpu -lc10
echo "built $out"
