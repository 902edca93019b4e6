#!/usr/bin/env bash
# rank_death.sh MPIRUN PROGRAM: two ranks that cannot go on together (see rank_death.cpp); each
# time mpirun must end the job with an error within the time limit (a hang would hit `timeout`,
# exit 124).
set -uo pipefail
mpirun=$1 program=$2
for mode in kill first-nan; do
  start=$(date +%s)
  timeout 120 "$mpirun" --oversubscribe -np 2 "$program" "$mode" >"rank_death_$mode.log" 2>&1
  rc=$?
  elapsed=$(( $(date +%s) - start ))
  cat "rank_death_$mode.log"
  echo "rank_death ($mode): mpirun exited with $rc after ${elapsed} s"
  if [[ $rc -eq 124 ]]; then echo "rank_death ($mode): FAILED: the other rank hung"; exit 1; fi
  if [[ $rc -eq 0 ]]; then echo "rank_death ($mode): FAILED: the job reported success"; exit 1; fi
  if [[ $mode == first-nan ]] && ! grep -q "cannot stop together" "rank_death_$mode.log"; then
    echo "rank_death ($mode): FAILED: no error saying why"; exit 1
  fi
done
echo "rank_death: both failures ended the job with an error"
