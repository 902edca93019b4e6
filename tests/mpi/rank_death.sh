#!/usr/bin/env bash
# rank_death.sh MPIRUN PROGRAM: rank 1 of two kills itself mid-training; mpirun must end the job
# with an error within the time limit (a hang would hit `timeout`, exit 124).
set -uo pipefail
mpirun=$1 program=$2
start=$(date +%s)
timeout 120 "$mpirun" --oversubscribe -np 2 "$program"
rc=$?
elapsed=$(( $(date +%s) - start ))
echo "rank_death: mpirun exited with $rc after ${elapsed} s"
if [[ $rc -eq 124 ]]; then echo "rank_death: FAILED: rank 0 hung after rank 1 died"; exit 1; fi
if [[ $rc -eq 0 ]]; then echo "rank_death: FAILED: the job reported success"; exit 1; fi
echo "rank_death: the death of one rank ended the job with an error"
