#!/usr/bin/env bash
# `just bench-quality`: what each training recipe learns on faces as hard as real ones.
#
# On the hard synthetic set (valar synth --difficulty hard), sized like the real AffectNet
# sample of issue 8 (about 3,000 training and 1,000 test faces, 48x48 gray), it trains, for
# each seed, side by side in one run and on the very same prepared faces:
#   - PyTorch, reference recipe   (scripts/quality_torch.py)
#   - valar,   reference recipe   (valar train --recipe reference)
#   - valar,   default recipe     (valar train with no settings)
#   - PyTorch, default recipe     (scripts/quality_torch.py --recipe default: valar's default
#                                  written in PyTorch; only when BENCH_ROWS names torch-default)
#   - any extra valar rows given as BENCH_VARIANTS="name=flags;name=flags"
# and prints test CCC and RMSE per dimension, mean ± sd over seeds, beside the
# mean-prediction baseline, and the whole-run speed of valar's reference recipe against
# PyTorch's, and of valar's default against PyTorch's default when both ran (each side's
# process wall time on the same faces; fair with BENCH_JOBS=1, or with each model pinned to
# its own core as the default does). Settings (environment):
#   BENCH_DATA      a folder holding train_set/ and val_set/ in AffectNet's newer layout (the
#                   real faces of ../shared/real-faces/setup): train on train_set, test on
#                   val_set, instead of the hard synthetic set. Nothing is written into it.
#   BENCH_PREP_FLAGS  extra `valar prepare` flags for both the training and the test faces (for
#                   example --align); the prepared folders and kept rows then live apart,
#                   under a name ending in those flags, and PyTorch trains on the same faces
#   BENCH_VAL_FRACTION  the share of training faces prepare holds out for validation
#                   (default 0.1, prepare's own default); PyTorch trains on the same faces
#   BENCH_SEEDS     seeds per row (default 3; the README's figures use 3)
#   BENCH_EPOCHS    epochs for the reference recipes (default 25, the recipe's)
#   BENCH_DEFAULT_EPOCHS  epochs for the default recipes, valar's and PyTorch's (default: the
#                   recipe's own, 50); fewer only for a quick check of the bench itself
#   BENCH_TRAIN_N   synthetic training images (default 3333: 3,000 train + 333 validation)
#   BENCH_TEST_N    synthetic test images (default 1000)
#   BENCH_ROWS      which standard rows to run, of torch, reference, default and torch-default
#                   (default "torch,reference,default"; "none" for none)
#   BENCH_LIST      if set, list the models that would train (those without a kept row) and stop
#   BENCH_PRUNE     names of BENCH_VARIANTS rows to run with the first seed only (comma-separated):
#                   candidates pruned on one seed before the finalists get all of them
#   BENCH_JOBS      models trained at once, each on its own core (default: 2 on 2+ cores)
#   BENCH_THREADS   threads per model (default 1, or every core when BENCH_JOBS=1)
#   TORCH_PYTHON    a python with torch (else it is installed into target/bench/torchenv)
# Results: target/bench/quality/hard-TRAIN-TEST/results.jsonl (one line per trained model)
# and table.md there; with BENCH_DATA, target/bench/quality/real-NAME-vVALFRACTION/.
# Each trained model's row is kept in runs/NAME-seedS.row.json, beside the flags that trained
# it, and reused by later runs on the same prepared data with the same flags, so an
# interrupted bench resumes where it stopped and extra rows can be added without retraining
# the others; a valar model killed part-way continues from its checkpoint (runs/NAME-seedS.started
# holds the flags it was started with). A rebuilt valar does not retrain kept rows (a recipe's flags mean the same
# thing across builds); BENCH_FRESH=1 retrains everything.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seeds=${BENCH_SEEDS:-3}
epochs=${BENCH_EPOCHS:-25}
default_epochs=${BENCH_DEFAULT_EPOCHS:-}
train_n=${BENCH_TRAIN_N:-3333}
test_n=${BENCH_TEST_N:-1000}
rows=${BENCH_ROWS:-torch,reference,default}
variants=${BENCH_VARIANTS:-}
val_fraction=${BENCH_VAL_FRACTION:-0.1}
prep_flags=${BENCH_PREP_FLAGS:-}
# The prepared folders' name says which prepare flags made them: "--align" → "-align".
prep_tag=$(echo "$prep_flags" | tr -cs 'a-zA-Z0-9.' '-' | sed 's/^-*//; s/-*$//')
prep_tag=${prep_tag:+-$prep_tag}
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

# The data: one hard synthetic set made once, or BENCH_DATA's real faces; every row trains on
# the same prepared files.
if [ -n "${BENCH_DATA:-}" ]; then
  data=$(cd "$BENCH_DATA" && pwd)
  for d in train_set val_set; do
    [ -d "$data/$d" ] || { echo "BENCH_DATA=$BENCH_DATA has no $d/ (see ../shared/real-faces/setup)"; exit 2; }
  done
  src="$work/real-$(basename "$data")-v$val_fraction$prep_tag"
  mkdir -p "$src"
  # Stands for "the data changed" below: the newest file of the two folders' listings.
  [ -f "$src/.done" ] || touch "$src/.done"
else
  data="$work/hard-$train_n-$test_n"
  src="$data$prep_tag"
  if [ ! -f "$data/.done" ]; then
    rm -rf "$data"
    "$valar" synth --difficulty hard --layout newer --n "$train_n" --val-n "$test_n" --seed 1 \
      --invalid-fraction 0 --out "$data"
    touch "$data/.done"
  fi
  mkdir -p "$src"
  [ -f "$src/.done" ] || touch "$src/.done"
fi
train_dir="$src/prepared-train"; test_dir="$src/prepared-test"
if [ ! -f "$train_dir/prep.json" ] || [ "$src/.done" -nt "$train_dir/prep.json" ]; then
  # One interval with a quota above the row count keeps every face (the sample's own label
  # distribution, as a random AffectNet sample has) and holds a share out for validation.
  # shellcheck disable=SC2086 # the flags are meant to split into words
  "$valar" prepare --set "$data/train_set" --out "$train_dir" --force --intervals 1 \
    --quota 1000000 --val-fraction "$val_fraction" --seed 0 $prep_flags > "$src/prepare-train.log"
  # shellcheck disable=SC2086 # the flags are meant to split into words
  "$valar" prepare --set "$data/val_set" --out "$test_dir" --force --all $prep_flags > "$src/prepare-test.log"
fi

results="$src/results.jsonl"
runs="$src/runs"
mkdir -p "$runs"
export OMP_WAIT_POLICY=PASSIVE
# cached ROWFILE FLAGS: whether ROWFILE holds a result newer than the prepared data, trained
# with FLAGS (kept in ROWFILE.flags; the PyTorch rows' "flags" are the script's checksum).
cached() {
  [ -z "${BENCH_FRESH:-}" ] && [ -s "$1" ] && [ "$1" -nt "$train_dir/prep.json" ] \
    && [ -f "$1.flags" ] && [ "$(cat "$1.flags")" = "$2" ]
}
torch_sum=$(sha256sum "$root/scripts/quality_torch.py" | cut -c1-16)
# torch_flags RECIPE: what trained a PyTorch row of that recipe.
torch_flags() {
  if [ "$1" = reference ]; then echo "quality_torch.py $torch_sum epochs $epochs"
  else echo "quality_torch.py $torch_sum recipe $1 epochs ${default_epochs:-50}"; fi
}
now() { python3 -c 'import time; print(time.perf_counter())'; }

# Every model is trained by one of BENCH_JOBS workers (default: one per core, at most 2),
# each pinned to its own core with one thread, so PyTorch and valar get the same machine
# share and two runs use the 2-core machine better than one run with two threads.
jobs=${BENCH_JOBS:-$(( $(nproc) >= 2 ? 2 : 1 ))}
threads=${BENCH_THREADS:-$(( jobs == 1 ? $(nproc) : 1 ))}
pin() { if [ "$jobs" -gt 1 ] && command -v taskset >/dev/null; then taskset -c "$1" "${@:2}"; else "${@:2}"; fi; }

# torch_row WORKER SEED RECIPE: trains PyTorch's reference recipe, or valar's default recipe
# written in PyTorch (RECIPE default, checkpointed every epoch into runs/torch-default-seedS/
# as valar's run is); writes its row file.
torch_row() {
  local worker=$1 seed=$2 recipe=$3 out="$runs/torch-$3-seed$2.json"
  local flags t0 t1 args
  flags=$(torch_flags "$recipe")
  cached "$out.row.json" "$flags" && return
  if [ "$recipe" = reference ]; then args=(--epochs "$epochs")
  else args=(--recipe "$recipe" --epochs "${default_epochs:-50}" --out "$runs/torch-$recipe-seed$seed"); fi
  t0=$(now)
  pin "$worker" "$py" "$root/scripts/quality_torch.py" "$train_dir" --test "$test_dir" \
    "${args[@]}" --seed "$seed" --threads "$threads" --json "$out" \
    > "$runs/torch-$recipe-seed$seed.log" 2>&1 \
    || { echo "PyTorch $recipe (seed $seed) failed; see $runs/torch-$recipe-seed$seed.log"; return 1; }
  t1=$(now)
  # The whole process, as valar's rows are timed: start-up, loading, training, testing.
  python3 "$root/scripts/bench_quality.py" row --name "PyTorch $recipe" --seed "$seed" \
    --engine pytorch --torch-json "$out" --seconds "$(python3 -c "print($t1 - $t0)")" \
    > "$out.row.json"
  echo "$flags" > "$out.row.json.flags"
  echo "done: PyTorch $recipe, seed $seed"
}

# valar_row WORKER NAME SEED FLAGS...: trains, evaluates on the test set; writes its row file.
valar_row() {
  local worker=$1 name=$2 seed=$3; shift 3
  local run="$runs/${name// /-}-seed$seed"
  local t0
  cached "$run.row.json" "$*" && return
  t0=$(now)
  # A run killed part-way (the session ended, the machine rebooted) resumes from its last
  # checkpoint when it was started with the same flags; its time is then not a whole run's.
  local seconds
  if [ -z "${BENCH_FRESH:-}" ] && [ -f "$run.started" ] && [ "$(cat "$run.started")" = "$*" ] \
    && [ -d "$run/checkpoint" ]; then
    pin "$worker" "$valar" train --resume "$run" >> "$run.log" 2>&1 \
      || { echo "valar $name (seed $seed) failed to resume; see $run.log"; tail -5 "$run.log"; return 1; }
    seconds=""
  else
    echo "$*" > "$run.started"
    pin "$worker" "$valar" train --data "$train_dir" --out "$run" --force --seed "$seed" "$@" \
      > "$run.log" 2>&1 || { echo "valar $name (seed $seed) failed; see $run.log"; tail -5 "$run.log"; return 1; }
    seconds=$(python3 -c "print($(now) - $t0)")
  fi
  pin "$worker" "$valar" evaluate --model "$run/model.onnx" --data "$test_dir" --split all \
    --out "$run/predictions-test.csv" > "$run/evaluate.txt" 2>&1
  python3 "$root/scripts/bench_quality.py" row --name "$name" --seed "$seed" \
    --engine valar --predictions "$run/predictions-test.csv" --train "$train_dir" \
    ${seconds:+--seconds "$seconds"} --metrics "$run/metrics.csv" > "$run.row.json"
  echo "$*" > "$run.row.json.flags"
  echo "done: $name, seed $seed"
}

# The job list, seed by seed; each line is "KIND|NAME|SEED|FLAGS" (a PyTorch row's FLAGS: its
# recipe).
queue=()
IFS=';' read -ra extra <<< "$variants"
for seed in $(seq 1 "$seeds"); do
  [[ ",$rows," == *",torch,"* ]] && queue+=("torch|PyTorch reference|$seed|reference")
  [[ ",$rows," == *",reference,"* ]] && queue+=("valar|valar reference|$seed|--recipe reference --epochs $epochs")
  [[ ",$rows," == *",default,"* ]] && queue+=("valar|valar default|$seed|${default_epochs:+--epochs $default_epochs}")
  [[ ",$rows," == *",torch-default,"* ]] && queue+=("torch|PyTorch default|$seed|default")
  for v in "${extra[@]}"; do
    [ -z "$v" ] && continue
    if [ "$seed" -gt 1 ] && [[ ",${BENCH_PRUNE:-}," == *",${v%%=*},"* ]]; then continue; fi
    queue+=("valar|${v%%=*}|$seed|${v#*=}")
  done
done
row_file() {
  local kind name seed flags
  IFS='|' read -r kind name seed flags <<< "$1"
  if [ "$kind" = torch ]; then echo "$runs/torch-$flags-seed$seed.json.row.json"
  else echo "$runs/${name// /-}-seed$seed.row.json"; fi
}
# Only the jobs without a kept result are dealt out, so that a worker whose share was all
# kept models does not sit idle while the other trains every new one.
pending=()
for job in "${queue[@]}"; do
  if [ "${job%%|*}" = torch ]; then flags=$(torch_flags "${job##*|}"); else flags=$(echo ${job##*|}); fi
  cached "$(row_file "$job")" "$flags" || pending+=("$job")
done
if [ -n "${BENCH_LIST:-}" ]; then
  echo "== ${#queue[@]} models, ${#pending[@]} to train (BENCH_LIST: nothing trains):"
  for job in "${pending[@]}"; do echo "  ${job#*|}"; done
  exit 0
fi
# worker K: runs jobs K, K + jobs, K + 2·jobs, … of the pending ones.
worker() {
  local k=$1 i kind name seed flags
  for ((i = k; i < ${#pending[@]}; i += jobs)); do
    IFS='|' read -r kind name seed flags <<< "${pending[$i]}"
    if [ "$kind" = torch ]; then torch_row "$k" "$seed" "$flags" || true
    # shellcheck disable=SC2086 # the flags are meant to split into words
    else valar_row "$k" "$name" "$seed" $flags || true; fi
  done
}
echo "== ${#queue[@]} models (${#pending[@]} to train), $jobs at a time ($threads thread(s) each); logs in $runs"
pids=()
for ((k = 0; k < jobs; k++)); do worker "$k" & pids+=($!); done
wait "${pids[@]}"

: > "$results"
missing=0
for job in "${queue[@]}"; do
  f=$(row_file "$job")
  if [ -s "$f" ]; then cat "$f" >> "$results"; else echo "missing result: ${job%%|*} ${job#*|}"; missing=1; fi
done
title="Hard synthetic set"
[ -n "${BENCH_DATA:-}" ] && title="Real faces ($(basename "$data"): train_set, tested on val_set)"
python3 "$root/scripts/bench_quality.py" table --results "$results" --train "$train_dir" \
  --test "$test_dir" --title "$title" | tee "$src/table.md"
exit "$missing"
