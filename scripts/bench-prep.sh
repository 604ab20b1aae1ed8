#!/usr/bin/env bash
# `just bench-prep`: valar prepare against pandas + Pillow (draft) + multiprocessing(2),
# side by side in one run, on the same synthetic data. Prints both figures and the ratio.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
valar="$root/target/release/valar"
work="$root/target/bench"
n=${BENCH_IMAGES:-20000}
mkdir -p "$work"
python3 -c "import numpy, pandas, PIL" 2>/dev/null || python3 -m pip install --quiet numpy pandas pillow

data="$work/synth-$n"
[ -d "$data" ] || "$valar" synth --n "$n" --val-n 0 --seed 1 --out "$data"
csv="$data/Manually_Annotated_file_lists/training.csv"
images="$data/Manually_Annotated_Images"

now() { python3 -c 'import time; print(time.perf_counter())'; }
# Warm the page cache, so both tools read the same files from memory.
find "$images" -type f -exec cat {} + > /dev/null

echo "== preparation: $n-image synthetic set, quota 1000 x 10 intervals, 48x48 gray"
t0=$(now)
"$valar" prepare --csv "$csv" --images "$images" --out "$work/prep-valar" --force --seed 0 > "$work/valar-prep.log"
t1=$(now)
faces=$(python3 -c "import json; print(json.load(open('$work/prep-valar/prep.json'))['faces'])")
valar_ips=$(python3 -c "print(round($faces / ($t1 - $t0), 1))")
echo "valar:  $faces faces in $(python3 -c "print(round($t1 - $t0, 2))") s = $valar_ips images/s"
py=$(python3 "$root/scripts/bench_prep.py" faces --csv "$csv" --images "$images" --out "$work/prep-python" --workers 2)
py_ips=$(python3 -c "import json; print(round(json.loads('''$py''')['images_per_s'], 1))")
echo "python: $py"
echo "prepare ratio (valar / python): $(python3 -c "print(round($valar_ips / $py_ips, 2))")x"

echo "== stratification: 414,799-row AffectNet-format CSV"
big="$work/big-training.csv"
[ -f "$big" ] || python3 "$root/scripts/make_big_csv.py" "$big"
best_valar=999
for _ in 1 2 3; do
  t0=$(now); "$valar" prepare --csv "$big" --images "$work/no-images" --dry-run > "$work/valar-dry.json"; t1=$(now)
  best_valar=$(python3 -c "print(min($best_valar, $t1 - $t0))")
done
best_py=999
for _ in 1 2 3; do
  s=$(python3 "$root/scripts/bench_prep.py" stratify --csv "$big" | python3 -c "import json,sys; print(json.load(sys.stdin)['seconds'])")
  best_py=$(python3 -c "print(min($best_py, $s))")
done
echo "valar (read + exclude + stratify, best of 3):  $(python3 -c "print(round($best_valar, 3))") s"
echo "pandas (read_csv + filter + groupby sample, best of 3): $(python3 -c "print(round($best_py, 3))") s"
echo "stratify ratio (python / valar time): $(python3 -c "print(round($best_py / $best_valar, 2))")x"
