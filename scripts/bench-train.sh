#!/usr/bin/env bash
# `just bench-train`: a training step (batch 64) and inference (batch 256) of both models in
# valar's ONNX Runtime engine and in PyTorch on the CPU, side by side in one run.
# PyTorch is large (several GB from PyPI); set TORCH_PYTHON to a python that has it, or
# the script installs it into target/bench/torchenv the first time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
steps=${BENCH_STEPS:-10}
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
for model in compact facecnn; do
  # Each model in its own process, so peak RSS is per model.
  target/release/examples/bench_train "$model" --steps "$steps" | tee -a "$out"
  # PyTorch's OpenMP threads spin by default, which starves the other core's work here.
  OMP_WAIT_POLICY=PASSIVE "$py" scripts/bench_train.py "$model" --steps "$steps" | tee -a "$out"
done
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def get(engine, model, measure):
    # PyTorch's best setting (fused AdamW, for the step) is the one to beat.
    vals = [r["value"] for r in rows
            if r.get("engine", "").startswith(engine) and r["model"] == model and r["measure"] == measure]
    if not vals:
        return None
    return min(vals) if ("ms" in measure or "rss" in measure) else max(vals)
print("\nmodel     measure                valar    pytorch      ratio")
for model in ("compact", "facecnn"):
    for measure in sorted({r["measure"] for r in rows if r["model"] == model}):
        v = get("valar", model, measure); t = get("pytorch", model, measure)
        if v is None or t is None:
            continue
        better_low = "ms" in measure or "rss" in measure
        ratio = (t / v) if better_low else (v / t)
        print(f"{model:9} {measure:22} {v:9.1f} {t:10.1f} {ratio:9.2f}x")
print("(ratio > 1: valar is better)")
PY
