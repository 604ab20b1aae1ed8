#!/usr/bin/env bash
# `just bench-audit`: the release `valar audit` on BENCH_IMAGES (default 20,000) synthetic
# images in AffectNet's original layout, BENCH_ROUNDS times (default 3); prints each
# round's faces/s and the median.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
valar="$root/target/release/valar"
work="$root/target/bench"
n=${BENCH_IMAGES:-20000}
rounds=${BENCH_ROUNDS:-3}
mkdir -p "$work"

data="$work/synth-$n"
[ -d "$data" ] || "$valar" synth --n "$n" --val-n 0 --seed 1 --out "$data"
csv="$data/Manually_Annotated_file_lists/training.csv"
images="$data/Manually_Annotated_Images"
# Warm the page cache, so every round reads the same files from memory.
find "$images" -type f -exec cat {} + > /dev/null

rates=()
for round in $(seq 1 "$rounds"); do
  out="$work/audit-$n"
  # The whole output first: `| head` would close the pipe on valar's later lines.
  report=$("$valar" audit --csv "$csv" --images "$images" --out "$out" --force)
  line=$(head -n 1 <<<"$report")
  rate=$(sed -E 's/.*\(([0-9.]+) faces\/s\).*/\1/' <<<"$line")
  echo "round $round: $line"
  rates+=("$rate")
done
median=$(printf '%s\n' "${rates[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "valar audit: median $median faces/s over $rounds rounds, $n images, $(nproc) cores"
