#!/usr/bin/env bash
# `just check-cuda`: verifies valar's CUDA path on a machine with an NVIDIA GPU and nothing but
# this repository (Rust, Python 3 with pip and venv, and access to PyPI). In one go it
#   1. installs ONNX Runtime's CUDA build (onnxruntime-gpu[cuda,cudnn]==1.31.1) and PyPI's
#      PyTorch, whose default Linux wheel carries CUDA, into target/cuda/venv;
#   2. builds valar and the bench example (release);
#   3. runs each network's first training steps on a fixed batch on the GPU and on the CPU
#      from the same seed, and checks the losses agree (see TOLERANCES below);
#   4. trains each network for one epoch with `valar train --device cuda` and `--device cpu`
#      on synthetic faces from one seed, and checks the epoch's training loss agrees;
#   5. times the training step (batch 64) and inference (batch 256) of valar and of PyTorch
#      on the same GPU, and prints the table the README quotes.
# It is sized to finish within 8 minutes on a GPU machine with 16 cores.
#
# Where no GPU is, the CUDA-flavoured graphs are still checked against the CPU ones by
# `just test` (valar-engine's registry-wide tests). CHECK_CUDA_DEVICE=cpu runs this whole script
# with the CPU standing in for the GPU, to test its plumbing; it proves nothing about CUDA.
#   CHECK_CUDA_MODELS="compact facecnn reference resnet mobilenet vgg"  CHECK_CUDA_STEPS=20
#   CHECK_CUDA_TORCH=0 skips the PyTorch timings (no PyTorch install).
#
# TOLERANCES. ONNX Runtime's CUDA provider may use TF32 and picks cuDNN algorithms by speed,
# so the GPU does not repeat the CPU's rounding. The first step's loss (before any update) must
# agree to a relative 1e-3; after four updates, and after a whole epoch, to 2e-2 (Adam's first
# steps are sign-like, so rounding differences in small gradients move weights by up to lr).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
started=$(date +%s)
device=${CHECK_CUDA_DEVICE:-cuda}
models=${CHECK_CUDA_MODELS:-compact facecnn reference resnet mobilenet vgg}
steps=${CHECK_CUDA_STEPS:-20}
work="$root/target/cuda"
mkdir -p "$work"

case "$device" in
  cuda)
    if ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1'; then
      echo "check-cuda: no NVIDIA driver (libcuda.so.1) on this machine, so there is nothing to check." >&2
      echo "The CUDA-flavoured graphs are compared with the CPU ones by \`just test\`; CHECK_CUDA_DEVICE=cpu" >&2
      echo "runs this script's plumbing on the CPU." >&2
      exit 1
    fi
    venv="$work/venv"
    if [ ! -x "$venv/bin/python" ]; then
      python3 -m venv "$venv"
    fi
    echo "Installing onnxruntime-gpu[cuda,cudnn]==1.31.1, PyTorch and numpy into $venv ..."
    "$venv/bin/python" -m pip install --quiet "onnxruntime-gpu[cuda,cudnn]==1.31.1" numpy
    [ "${CHECK_CUDA_TORCH:-1}" = 0 ] || "$venv/bin/python" -m pip install --quiet torch
    py="$venv/bin/python"
    site=$("$py" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
    export ORT_DYLIB_PATH="$site/onnxruntime/capi/libonnxruntime.so.1.31.1"
    # The CUDA and cuDNN libraries of the nvidia-* wheels: Python's onnxruntime preloads them,
    # a Rust binary must be shown where they are.
    nvidia_libs=$(find "$site/nvidia" -maxdepth 2 -type d -name lib 2>/dev/null | paste -sd: -)
    export LD_LIBRARY_PATH="$nvidia_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    ;;
  cpu)
    echo "check-cuda: CHECK_CUDA_DEVICE=cpu, the CPU stands in for the GPU (a test of this script only)"
    py=${TORCH_PYTHON:-python3}
    export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$root/.ort/libonnxruntime.so.1.31.1}
    ;;
  *) echo "check-cuda: CHECK_CUDA_DEVICE must be cuda or cpu, not $device" >&2; exit 2 ;;
esac
torch_ok=1
if [ "${CHECK_CUDA_TORCH:-1}" = 0 ] || ! "$py" -c "import torch" 2>/dev/null; then
  torch_ok=0
  echo "check-cuda: no PyTorch in $py, so the PyTorch timings are skipped"
fi

cargo build --release -p valar-cli -p valar-engine --example bench_train
valar="$root/target/release/valar"
bench="$root/target/release/examples/bench_train"
results="$work/check.jsonl"; : > "$results"
failed=0

# compare NAME WHAT A B TOL: relative agreement |a - b| <= tol * max(|b|, 1e-6).
compare() {
  if python3 - "$3" "$4" "$5" <<'PY'
import sys
a, b, tol = map(float, sys.argv[1:])
sys.exit(0 if abs(a - b) <= tol * max(abs(b), 1e-6) else 1)
PY
  then echo "  ok    $1 $2: $device $3, cpu $4 (relative tolerance $5)"
  else echo "  FAIL  $1 $2: $device $3, cpu $4 (relative tolerance $5)"; failed=1
  fi
}
value() { python3 -c 'import json,sys; print(next(json.loads(l)["value"] for l in sys.stdin if json.loads(l)["measure"]==sys.argv[1]))' "$1"; }

echo "== 1. the first five training steps, $device against cpu, on a fixed batch"
for m in $models; do
  "$bench" "$m" --device "$device" --steps "$steps" --losses 5 | sed "s/^{/{\"device\":\"$device\",/" > "$work/$m.$device.jsonl"
  "$bench" "$m" --device cpu --steps 1 --losses 5 | sed 's/^{/{"device":"cpu",/' > "$work/$m.cpu.jsonl"
  cat "$work/$m.$device.jsonl" >> "$results"
  compare "$m" "loss at step 1" "$(value loss_step_1 < "$work/$m.$device.jsonl")" "$(value loss_step_1 < "$work/$m.cpu.jsonl")" 1e-3
  compare "$m" "loss at step 5" "$(value loss_step_5 < "$work/$m.$device.jsonl")" "$(value loss_step_5 < "$work/$m.cpu.jsonl")" 2e-2
done

echo "== 2. one epoch of valar train per network on synthetic faces, $device against cpu"
data="$work/faces"
if [ ! -f "$data/prepared/prep.json" ]; then
  rm -rf "$data"
  "$valar" synth --out "$data/src" --n 1280 --val-n 0 --seed 1 --invalid-fraction 0 >/dev/null
  "$valar" prepare --csv "$data/src/Manually_Annotated_file_lists/training.csv" \
    --images "$data/src/Manually_Annotated_Images" --out "$data/prepared" \
    --intervals 1 --quota 1000000 --seed 0 >/dev/null
fi
for m in $models; do
  for d in "$device" cpu; do
    log="$work/train-$m-$d.log"
    "$valar" train --data "$data/prepared" --model "$m" --epochs 1 --device "$d" --seed 0 \
      --out "$work/runs/$m-$d" --force > "$log" 2>&1 || { echo "  FAIL  $m: valar train on $d failed, see $log"; failed=1; continue 2; }
    if [ "$d" = cuda ] && grep -q "CUDA not used" "$log"; then
      echo "  FAIL  $m: valar train --device cuda ran on the CPU:"; grep "CUDA not used" "$log"; failed=1; continue 2
    fi
  done
  loss() { python3 -c 'import csv,sys; print(next(csv.DictReader(open(sys.argv[1])))["train_loss"])' "$1"; }
  compare "$m" "epoch-1 training loss" "$(loss "$work/runs/$m-$device/metrics.csv")" "$(loss "$work/runs/$m-cpu/metrics.csv")" 2e-2
done

echo "== 3. step and inference speed on $device, valar against PyTorch"
if [ "$torch_ok" = 1 ]; then
  for m in $models; do
    [ "$m" = vgg ] && continue  # scripts/bench_train.py has no vgg twin
    "$py" scripts/bench_train.py "$m" --device "$device" --steps "$steps" --fused-only \
      | sed "s/^{/{\"device\":\"$device\",/" >> "$results"
  done
fi
python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def get(engine, model, measure):
    v = [r["value"] for r in rows if r["model"] == model and r["measure"] == measure
         and r["engine"].startswith(engine)]
    return v[0] if v else None
print(f"{'network':10} {'valar step ms':>14} {'torch step ms':>14} {'step ratio':>11} "
      f"{'valar img/s':>12} {'torch img/s':>12} {'inference ratio':>16}")
for m in dict.fromkeys(r["model"] for r in rows):
    vs, ts = get("valar", m, "train_step_ms"), get("pytorch", m, "train_step_ms")
    vi, ti = get("valar", m, "inference_images_per_s"), get("pytorch", m, "inference_images_per_s")
    fmt = lambda x: f"{x:.1f}" if x is not None else "-"
    step = f"{ts / vs:.2f}x" if vs and ts else "-"
    inf = f"{vi / ti:.2f}x" if vi and ti else "-"
    print(f"{m:10} {fmt(vs):>14} {fmt(ts):>14} {step:>11} {fmt(vi):>12} {fmt(ti):>12} {inf:>16}")
print("(ratio > 1: valar is faster)")
PY
echo "check-cuda took $(( $(date +%s) - started )) s on $device"
if [ "$failed" != 0 ]; then echo "check-cuda FAILED (see FAIL lines above)"; exit 1; fi
echo "check-cuda passed on $device"
