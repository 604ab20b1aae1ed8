#!/usr/bin/env bash
# `just fuzz [SECONDS] [TARGET…]`: runs cargo-fuzz (libFuzzer, nightly toolchain) on valar's
# parsers, SECONDS each (default 600), one after another; new corpus entries land in
# fuzz/corpus/<target>/, crashing inputs in fuzz/artifacts/<target>/. Prints one summary
# line per target: executions, seconds, crashes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(affectnet_csv generic_csv npy_string_scalar face_decoder prepare_end_to_end)
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
"$root/scripts/setup-system.sh"
cd "$root/fuzz"
cargo +nightly fuzz build -O
mkdir -p "$root/target/fuzz"
for t in "${targets[@]}"; do
  log="$root/target/fuzz/$t.log"
  mkdir -p "corpus/$t" "artifacts/$t"
  # crash-, oom-, leak- and timeout- files are failures; slow-unit- files only say an
  # input took long (libFuzzer's -report_slow_units, 10 s).
  failures() { find "artifacts/$t" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'leak-*' -o -name 'timeout-*' \) | wc -l; }
  slow() { find "artifacts/$t" -type f -name 'slow-unit-*' | wc -l; }
  before=$(failures); slow_before=$(slow)
  # Images need room; the CSV and .npy targets stay at libFuzzer's default length.
  max_len=4096; [ "$t" = face_decoder ] || [ "$t" = prepare_end_to_end ] && max_len=65536
  status=0
  cargo +nightly fuzz run -O "$t" "corpus/$t" -- -max_total_time="$seconds" -max_len="$max_len" \
    -rss_limit_mb=4096 -print_final_stats=1 > "$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  crashes=$(( $(failures) - before )); slow_units=$(( $(slow) - slow_before ))
  echo "$t: ${runs:-?} executions in ${seconds} s, ${crashes} crashes, ${slow_units} slow inputs (exit $status, log $log)"
done
