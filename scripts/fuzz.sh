#!/usr/bin/env bash
# Builds the libFuzzer harnesses (ASan + UBSan + coverage, in ./build-fuzz) and runs
# each for SECONDS (default 60), or only those named:
#   scripts/fuzz.sh [SECONDS] [HARNESS ...]     e.g. scripts/fuzz.sh 1800 npy idx
# Each grows a working corpus in build-fuzz/fuzz-corpus/HARNESS from its
# seeds (fuzz/corpus/HARNESS) and leaves any input that finds a defect in
# build-fuzz/fuzz-findings/HARNESS; the log of each run
# (build-fuzz/fuzz-HARNESS.log) says how many executions it made. Harnesses
# run side by side, one per core, each for SECONDS of wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
harnesses=("$@")
if ((${#harnesses[@]} == 0)); then
  harnesses=(idx npy image data_spec metadata model inverse patterns checkpoint)
fi
bash scripts/install-deps.sh
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ \
  -DMIPIN_SANITIZE=ON -DMIPIN_FUZZ=ON -DMIPIN_BUILD_TESTS=OFF -DMIPIN_BUILD_PYTHON=OFF
cmake --build build-fuzz --target $(printf 'fuzz_%s ' "${harnesses[@]}")
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
cores=$(nproc)
run_one() {
  local name=$1
  local corpus=build-fuzz/fuzz-corpus/$name findings=build-fuzz/fuzz-findings/$name
  mkdir -p "$corpus" "$findings"
  # -rss_limit_mb: an input that makes a reader allocate more is a defect.
  # -fork=1: a crash, leak or timeout is kept and the run goes on.
  "build-fuzz/fuzz/fuzz_$name" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=60 \
    -fork=1 -ignore_crashes=1 -print_final_stats=1 -artifact_prefix="$findings/" \
    "$corpus" "fuzz/corpus/$name" > "build-fuzz/fuzz-$name.log" 2>&1 || true
  local runs found
  runs=$(grep -oE "^#[0-9]+" "build-fuzz/fuzz-$name.log" | tail -1 | tr -d '#')
  found=$(find "$findings" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  echo "== $name: ${runs:-0} executions in $seconds s; $found input(s) that found defects in $findings"
}
for ((i = 0; i < ${#harnesses[@]}; i += cores)); do
  for name in "${harnesses[@]:i:cores}"; do
    echo "== $name: $seconds s"
    run_one "$name" &
  done
  wait
done
