#!/usr/bin/env bash
# Data-parallel step time at 1 and 2 ranks on this machine, then the model of bench/mpi_model.py
# for 8, 64 and 512 ranks from those measurements. Needs the MPI build (scripts/setup.sh --mpi).
#   bash bench/mpi_scaling.sh [MODEL]      models: realnvp_d2_h64 maf_d8 image_realnvp_d784_h1024
# One rank also runs an eighth of each batch, which separates the per-step cost from the per-row
# cost for the model (two ranks on one machine share its memory system, so they cannot).
# Writes bench/results/mpi_scaling.json (the measured lines) and prints both tables.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x build/bench/mpi_step ]] || { echo "mpi_scaling: build/bench/mpi_step missing: run scripts/setup.sh --mpi" >&2; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out=bench/results/mpi_scaling.json
cpu=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
{
  echo "{\"cpu\": \"$cpu\", \"cores\": $(nproc), \"date\": \"$(date -u +%F)\", \"commit\": \"$(git rev-parse --short HEAD)\", \"runs\": ["
  first=1
  # Two rounds, 1 then 2 ranks in each, so that a busy spell hits both alike.
  for round in 1 2; do
    for run in "1 1" "2 1" "1 8"; do
      read -r n divisor <<<"$run"
      while read -r line; do
        [[ $first == 1 ]] || echo ","
        first=0
        echo "${line%\}}, \"round\": $round}"
      done < <(mpirun --oversubscribe -np "$n" build/bench/mpi_step "${1:-all}" "$divisor")
    done
  done
  echo "]}"
} >"$out.tmp"
mv "$out.tmp" "$out"
python3 bench/mpi_model.py "$out"
