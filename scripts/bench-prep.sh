#!/usr/bin/env bash
# `just bench-prep`: valar prepare against pandas + Pillow (draft) + multiprocessing(2),
# side by side in one run, on the same synthetic data, alternating the two for BENCH_ROUNDS
# rounds (default 3). Prints every round, the median ratio and peak RSS, and the decode
# floor (libjpeg-turbo alone on the same images) with valar's share of it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
valar="$root/target/release/valar"
# The decode floor valar's prepare is measured against (crates/valar-face/examples/decode_floor.rs).
floor="$root/target/release/examples/decode_floor"
(cd "$root" && cargo build --release -p valar-face --example decode_floor)
work="$root/target/bench"
n=${BENCH_IMAGES:-20000}
mkdir -p "$work"
python3 -c "import numpy, pandas, PIL" 2>/dev/null || python3 -m pip install --quiet numpy pandas pillow
[ -x /usr/bin/time ] || apt-get install -y -qq time >/dev/null

data="$work/synth-$n"
[ -d "$data" ] || "$valar" synth --n "$n" --val-n 0 --seed 1 --out "$data"
csv="$data/Manually_Annotated_file_lists/training.csv"
images="$data/Manually_Annotated_Images"

# Warm the page cache, so both tools read the same files from memory.
find "$images" -type f -exec cat {} + > /dev/null
big="$work/big-training.csv"
[ -f "$big" ] || python3 "$root/scripts/make_big_csv.py" "$big"
cat "$big" > /dev/null

python3 "$root/scripts/bench_prep_compare.py" --valar "$valar" --csv "$csv" --images "$images" \
  --big "$big" --work "$work" --rounds "${BENCH_ROUNDS:-3}" --floor "$floor"
