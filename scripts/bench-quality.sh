#!/usr/bin/env bash
# `just bench-quality`: what each training recipe learns on faces as hard as real ones.
#
# On the hard synthetic set (valar synth --difficulty hard), sized like the real AffectNet
# sample of issue 8 (about 3,000 training and 1,000 test faces, 48x48 gray), it trains, for
# each seed, side by side in one run and on the very same prepared faces:
#   - PyTorch, reference recipe   (scripts/quality_torch.py)
#   - valar,   reference recipe   (valar train --recipe reference)
#   - valar,   default recipe     (valar train with no settings)
#   - any extra valar rows given as BENCH_VARIANTS="name=flags;name=flags"
# and prints test CCC and RMSE per dimension, mean ± sd over seeds, beside the
# mean-prediction baseline. Settings (environment):
#   BENCH_SEEDS     seeds per row (default 3; the README's figures use 3)
#   BENCH_EPOCHS    epochs for the reference recipes (default 25, the recipe's)
#   BENCH_TRAIN_N   synthetic training images (default 3333: 3,000 train + 333 validation)
#   BENCH_TEST_N    synthetic test images (default 1000)
#   BENCH_ROWS      which standard rows to run (default "torch,reference,default")
#   TORCH_PYTHON    a python with torch (else it is installed into target/bench/torchenv)
# Results: target/bench/quality/results.jsonl (one line per trained model) and table.md.
# Each trained model's row is kept in runs/NAME-seedS.row.json and reused by later runs on
# the same prepared data (BENCH_FRESH=1 retrains everything), so an interrupted bench
# resumes where it stopped and extra rows can be added without retraining the others.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seeds=${BENCH_SEEDS:-3}
epochs=${BENCH_EPOCHS:-25}
train_n=${BENCH_TRAIN_N:-3333}
test_n=${BENCH_TEST_N:-1000}
rows=${BENCH_ROWS:-torch,reference,default}
variants=${BENCH_VARIANTS:-}
work="$root/target/bench/quality"
valar="$root/target/release/valar"
mkdir -p "$work"

py=${TORCH_PYTHON:-python3}
if ! "$py" -c "import torch, numpy" 2>/dev/null; then
  env="$root/target/bench/torchenv"
  if [ ! -x "$env/bin/python" ] || ! "$env/bin/python" -c "import torch, numpy" 2>/dev/null; then
    echo "Installing PyTorch (CPU) into $env for the baseline ..."
    python3 -m venv "$env"
    "$env/bin/python" -m pip install --quiet torch numpy
  fi
  py="$env/bin/python"
fi

# The data: one hard synthetic set, prepared once; every row trains on these same files.
src="$work/hard-$train_n-$test_n"
if [ ! -f "$src/.done" ]; then
  rm -rf "$src"
  "$valar" synth --difficulty hard --layout newer --n "$train_n" --val-n "$test_n" --seed 1 \
    --invalid-fraction 0 --out "$src"
  touch "$src/.done"
fi
train_dir="$work/prep-train"; test_dir="$work/prep-test"
if [ ! -f "$train_dir/prep.json" ] || [ "$src/.done" -nt "$train_dir/prep.json" ]; then
  # One interval with a quota above the row count keeps every face (the sample's own label
  # distribution, as a random AffectNet sample has) and holds a tenth out for validation.
  "$valar" prepare --set "$src/train_set" --out "$train_dir" --force --intervals 1 \
    --quota 1000000 --seed 0 > "$work/prepare-train.log"
  "$valar" prepare --set "$src/val_set" --out "$test_dir" --force --all > "$work/prepare-test.log"
fi

results="$work/results.jsonl"
: > "$results"
mkdir -p "$work/runs"
export OMP_WAIT_POLICY=PASSIVE
# cached ROWFILE TOOL: whether ROWFILE holds a result newer than the prepared data and the
# tool that trained it (the valar binary or the PyTorch script).
cached() {
  [ -z "${BENCH_FRESH:-}" ] && [ -s "$1" ] && [ "$1" -nt "$train_dir/prep.json" ] && [ "$1" -nt "$2" ]
}
now() { python3 -c 'import time; print(time.perf_counter())'; }

# valar_row NAME SEED FLAGS...: trains, evaluates on the test set, appends one JSON line.
valar_row() {
  local name=$1 seed=$2; shift 2
  local run="$work/runs/${name// /-}-seed$seed"
  local t0 t1
  if cached "$run.row.json" "$valar"; then cat "$run.row.json" >> "$results"; tail -1 "$results"; return; fi
  t0=$(now)
  "$valar" train --data "$train_dir" --out "$run" --force --seed "$seed" "$@" \
    > "$run.log" 2>&1 || { echo "valar $name (seed $seed) failed; see $run.log"; tail -5 "$run.log"; return 1; }
  t1=$(now)
  "$valar" evaluate --model "$run/model.onnx" --data "$test_dir" --split all \
    --out "$run/predictions-test.csv" > "$run/evaluate.txt"
  python3 "$root/scripts/bench_quality.py" row --name "$name" --seed "$seed" \
    --engine valar --predictions "$run/predictions-test.csv" --train "$train_dir" \
    --seconds "$(python3 -c "print($t1 - $t0)")" --metrics "$run/metrics.csv" > "$run.row.json"
  cat "$run.row.json" >> "$results"
  tail -1 "$results"
}

for seed in $(seq 1 "$seeds"); do
  if [[ ",$rows," == *",torch,"* ]]; then
    out="$work/runs/torch-reference-seed$seed.json"
    if ! cached "$out.row.json" "$root/scripts/quality_torch.py"; then
      "$py" "$root/scripts/quality_torch.py" "$train_dir" --test "$test_dir" --epochs "$epochs" \
        --seed "$seed" --threads 2 --json "$out" > "$work/runs/torch-reference-seed$seed.log"
      python3 "$root/scripts/bench_quality.py" row --name "PyTorch reference" --seed "$seed" \
        --engine pytorch --torch-json "$out" > "$out.row.json"
    fi
    cat "$out.row.json" >> "$results"
    tail -1 "$results"
  fi
  if [[ ",$rows," == *",reference,"* ]]; then
    valar_row "valar reference" "$seed" --recipe reference --epochs "$epochs"
  fi
  if [[ ",$rows," == *",default,"* ]]; then
    valar_row "valar default" "$seed"
  fi
  IFS=';' read -ra extra <<< "$variants"
  for v in "${extra[@]}"; do
    [ -n "$v" ] || continue
    # shellcheck disable=SC2086 # the flags are meant to split into words
    valar_row "${v%%=*}" "$seed" ${v#*=}
  done
done

python3 "$root/scripts/bench_quality.py" table --results "$results" --train "$train_dir" \
  --test "$test_dir" | tee "$work/table.md"
