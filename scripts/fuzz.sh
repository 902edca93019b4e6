#!/usr/bin/env bash
# Builds the libFuzzer targets (scripts/setup.sh --fuzz, in build-fuzz/) and runs each one for
# SECONDS (default 60) from its seed corpus fuzz/corpus/<target>/, one after another.
#   scripts/fuzz.sh [SECONDS] [TARGET...]     targets: safetensors architecture csv idx model
# FLOWGRAD_FUZZ_PARALLEL=2 runs two targets at a time (one per core of a 2-core machine).
# New inputs that reach new code go to build-fuzz/corpus/<target>/ (kept between runs); a crash,
# leak, sanitizer report, timeout (10 s) or out-of-memory (2 GB) writes its input to
# build-fuzz/artifacts/<target>/ and makes the script fail at the end. Fix it, then add the input
# to fuzz/regressions/<target>/, which the test suite replays (CTest test fuzz_regressions).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
[[ $# -gt 0 ]] && shift
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(safetensors architecture csv idx model)
parallel=${FLOWGRAD_FUZZ_PARALLEL:-1}

bash scripts/setup.sh --fuzz build-fuzz

run_one() {
  local t=$1 dict=()
  [[ $t == safetensors || $t == model || $t == architecture ]] && dict=(-dict=fuzz/safetensors.dict)
  mkdir -p "build-fuzz/corpus/$t" "build-fuzz/artifacts/$t"
  echo "fuzz: $t for $seconds s"
  # detect_leaks: LeakSanitizer on; -timeout: an input taking 10 s is a finding, as is one that
  # allocates past 2 GB (-rss_limit_mb, -malloc_limit_mb follows it).
  local rc=0
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "build-fuzz/fuzz/fuzz_$t" "build-fuzz/corpus/$t" "fuzz/corpus/$t" "${dict[@]}" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="build-fuzz/artifacts/$t/" >"build-fuzz/fuzz-$t.log" 2>&1 || rc=$?
  echo "$rc" >"build-fuzz/fuzz-$t.rc"
  # libFuzzer's last status line (executions, coverage, corpus) and its run count.
  grep -E '^#[0-9]+[[:space:]]' "build-fuzz/fuzz-$t.log" | tail -1 | sed "s/^/fuzz: $t: /" || true
  grep -E '^Done [0-9]+ runs' "build-fuzz/fuzz-$t.log" | sed "s/^/fuzz: $t: /" || true
  if [[ $rc -ne 0 ]]; then
    echo "fuzz: $t FAILED (exit $rc); see build-fuzz/fuzz-$t.log and build-fuzz/artifacts/$t/" >&2
    tail -40 "build-fuzz/fuzz-$t.log" >&2
  fi
}

running=0
for t in "${targets[@]}"; do
  [[ -x build-fuzz/fuzz/fuzz_$t ]] || { echo "fuzz: no target '$t'" >&2; exit 2; }
  rm -f "build-fuzz/fuzz-$t.rc"
  if [[ $parallel -le 1 ]]; then
    run_one "$t"
  else
    run_one "$t" &
    running=$((running + 1))
    if [[ $running -ge $parallel ]]; then wait -n || true; running=$((running - 1)); fi
  fi
done
wait
failed=()
for t in "${targets[@]}"; do
  [[ $(cat "build-fuzz/fuzz-$t.rc" 2>/dev/null) == 0 ]] || failed+=("$t")
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: findings in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, $seconds s each: no findings"
