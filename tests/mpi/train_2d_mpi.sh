#!/usr/bin/env bash
# train_2d_mpi.sh MPIRUN TRAIN_2D WORK_DIR: the command line under mpirun. On a CSV (whose batches
# all ranks draw from one shared sampler), two ranks with half of each batch follow one process's
# loss curve; rank 0 alone writes the outputs; a checkpoint resumes under mpirun.
set -euo pipefail
mpirun=$1 train_2d=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
# A curved 2-D cloud, deterministic.
awk 'BEGIN { srand(3); print "x,y";
  for (i = 0; i < 3000; i++) { a = 2 * rand() - 1; b = rand() - 0.5;
    printf "%.6f,%.6f\n", a + 0.1 * b, a * a + 0.2 * b } }' >"$work/data.csv"
common=(train --data "$work/data.csv" --model realnvp --no-batch-norm --hidden 32 --steps 300
        --batch 256 --lr 2e-3 --checkpoint-every 150 --no-plots --quiet)
"$train_2d" "${common[@]}" --out "$work/one"
"$mpirun" --oversubscribe -np 2 "$train_2d" "${common[@]}" --out "$work/two"
# Float sums in another order: the curves agree to float rounding (2e-7 measured over 300 steps).
awk -F, 'NR == FNR { if (FNR > 1) one[$1] = $2; next }
  FNR > 1 { d = $2 - one[$1]; if (d < 0) d = -d; if (d > worst) worst = d; n++ }
  END { printf "train_2d_mpi: %d steps, largest loss difference one process vs two ranks %.2e\n", n, worst;
        if (n != 300 || worst > 1e-5) exit 1 }' "$work/one/loss.csv" "$work/two/loss.csv"
grep -q test_nll_nats "$work/two/metrics.json"
# Resume the two-rank run to 400 steps, under mpirun.
"$mpirun" --oversubscribe -np 2 "$train_2d" train --resume "$work/two" --steps 400 --quiet --no-plots
[[ $(wc -l <"$work/two/loss.csv") -eq 401 ]] || { echo "train_2d_mpi: resumed loss.csv is not 400 steps"; exit 1; }
# vi: each rank draws its own base samples, and its checkpoints gather every rank's stream.
"$mpirun" --oversubscribe -np 2 "$train_2d" vi --energy U2 --steps 100 --checkpoint-every 50 \
  --quiet --out "$work/vi" >/dev/null
grep -q '"kl_nats"' "$work/vi/metrics.json" || { echo "train_2d_mpi: vi wrote no metrics"; exit 1; }
# SIGTERM to mpirun (which passes it to the ranks) stops both ranks at one agreed step, with a
# checkpoint there, instead of leaving one waiting for the other.
"$mpirun" --oversubscribe -np 2 "$train_2d" train --data "$work/data.csv" --steps 100000000 \
  --log-every 50 --no-plots --out "$work/stopped" >"$work/stopped.log" 2>&1 &
job=$!
for _ in $(seq 600); do grep -q "^step " "$work/stopped.log" 2>/dev/null && break; sleep 0.1; done
kill -TERM "$job"
stop_rc=0
timeout 120 tail --pid="$job" -f /dev/null || { echo "train_2d_mpi: ranks still running 120 s after SIGTERM"; kill -KILL "$job"; exit 1; }
wait "$job" || stop_rc=$?
grep -q "interrupted (signal" "$work/stopped.log" || { cat "$work/stopped.log"; echo "train_2d_mpi: no orderly stop"; exit 1; }
steps=$(( $(wc -l <"$work/stopped/loss.csv") - 1 ))
[[ -f $work/stopped/model.safetensors && $((steps % 20)) -eq 0 ]] ||
  { echo "train_2d_mpi: stopped at step $steps without a checkpoint at an agreed step"; exit 1; }
echo "train_2d_mpi: SIGTERM stopped both ranks at step $steps (mpirun exit $stop_rc), checkpoint kept"
# A bad flag under mpirun is an error on every rank, not a hang.
rc=0
timeout 60 "$mpirun" --oversubscribe -np 2 "$train_2d" train --data "$work/missing.csv" --quiet \
  2>"$work/missing.err" || rc=$?
[[ $rc -ne 0 ]] || { echo "train_2d_mpi: a missing CSV did not fail"; exit 1; }
[[ $rc -ne 124 ]] || { echo "train_2d_mpi: a missing CSV hung"; exit 1; }
grep -q "missing.csv" "$work/missing.err" || { echo "train_2d_mpi: no error naming the file"; exit 1; }
echo "train_2d_mpi: passed"
