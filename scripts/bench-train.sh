#!/usr/bin/env bash
# `just bench-train`: a training step (batch 64) and inference (batch 256) of each network in
# valar's ONNX Runtime engine and in PyTorch on the CPU, side by side in one run: BENCH_ROUNDS
# rounds (default 3), each running valar then PyTorch on every network, and the step ratio is
# the median over rounds of the per-round ratio, so a busy spell hits both sides alike.
#   BENCH_MODELS="compact facecnn reference resnet mobilenet"  BENCH_STEPS=10  BENCH_ROUNDS=3
# PyTorch is large (several GB from PyPI); set TORCH_PYTHON to a python that has it, or
# the script installs it into target/bench/torchenv the first time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
steps=${BENCH_STEPS:-10}
rounds=${BENCH_ROUNDS:-3}
models=${BENCH_MODELS:-compact facecnn reference resnet mobilenet}
py=${TORCH_PYTHON:-python3}
if ! "$py" -c "import torch" 2>/dev/null; then
  env="$root/target/bench/torchenv"
  if [ ! -x "$env/bin/python" ]; then
    echo "Installing PyTorch (CPU) into $env for the baseline ..."
    python3 -m venv "$env"
    "$env/bin/python" -m pip install --quiet torch
  fi
  py="$env/bin/python"
fi
cargo build --release -p valar-engine --example bench_train
out="$root/target/bench/train.jsonl"
mkdir -p "$(dirname "$out")"; : > "$out"
for round in $(seq 1 "$rounds"); do
  for model in $models; do
    # Each network in its own process, so peak RSS is per network; tag every line with its round.
    target/release/examples/bench_train "$model" --steps "$steps" \
      | sed "s/^{/{\"round\":$round,/" | tee -a "$out"
    # PyTorch's OpenMP threads spin by default, which starves the other core's work here.
    # The default (unfused) AdamW is timed in the first round only: it is never the one to beat.
    fused=--fused-only; [ "$round" = 1 ] && fused=
    OMP_WAIT_POLICY=PASSIVE "$py" scripts/bench_train.py "$model" --steps "$steps" $fused \
      | sed "s/^{/{\"round\":$round,/" | tee -a "$out"
  done
done
python3 - "$out" $models <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
models = sys.argv[2:]
def val(engine, model, measure, rnd):
    # PyTorch's best setting (fused AdamW, for the step) is the one to beat.
    vals = [r["value"] for r in rows if r["round"] == rnd and r["model"] == model
            and r["measure"] == measure and r.get("engine", "").startswith(engine)
            and r.get("optimizer", "adamw_fused") == "adamw_fused"]
    return vals[0] if vals else None
print("\nnetwork    measure                    valar    pytorch   ratio (median of rounds)")
for model in models:
    for measure in ("train_step_ms", "inference_images_per_s", "peak_rss_mib"):
        pairs = [(val("valar", model, measure, r), val("pytorch", model, measure, r))
                 for r in sorted({r["round"] for r in rows})]
        pairs = [(v, t) for v, t in pairs if v is not None and t is not None]
        if not pairs:
            continue
        better_low = measure != "inference_images_per_s"
        ratios = [(t / v) if better_low else (v / t) for v, t in pairs]
        v = statistics.median(p[0] for p in pairs); t = statistics.median(p[1] for p in pairs)
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
        print(f"{model:10} {measure:22} {v:10.1f} {t:10.1f} {statistics.median(ratios):7.2f}x  ({len(pairs)} rounds, {spread})")
print("(ratio > 1: valar is better; step against PyTorch's fused AdamW)")
PY
