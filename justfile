# valar's tasks. `just demo` runs the whole pipeline; `just test` runs the tests.
# Both fetch ONNX Runtime first when it is missing.

set shell := ["bash", "-euo", "pipefail", "-c"]

ort_lib := justfile_directory() / ".ort/libonnxruntime.so.1.31.1"
export ORT_DYLIB_PATH := env("ORT_DYLIB_PATH", ort_lib)

# List the recipes.
default:
    @just --list

# Install nasm (libjpeg-turbo's SIMD) with apt when missing, and fetch ONNX Runtime 1.31.1
# (CPU) from PyPI into .ort/ (skipped when present).
setup:
    scripts/setup-system.sh
    scripts/setup-ort.sh

# Fetch ONNX Runtime's CUDA build into .ort-cuda/ and its CUDA 13 / cuDNN 9 wheels.
setup-cuda:
    scripts/setup-ort.sh --cuda
    python3 -m pip install "onnxruntime-gpu[cuda,cudnn]==1.31.1"

# Build the valar binary (release).
build: setup
    cargo build --release -p valar-cli

# Run the whole pipeline on the built-in synthetic dataset; the report lands in runs/demo/report.
demo: setup build
    target/release/valar run --out runs/demo

# cargo-nextest is used when installed (one process per test), plain `cargo test` otherwise.
# Run every test (unit tests next to the code, end-to-end tests in tests/).
test: setup
    #!/usr/bin/env bash
    set -euo pipefail
    if cargo nextest --version >/dev/null 2>&1; then
      cargo nextest run --workspace --no-fail-fast || { echo "nextest failed; see above"; exit 1; }
    else
      echo "cargo-nextest is not installed (cargo install cargo-nextest --locked); running cargo test"
      cargo test --workspace --no-fail-fast || { echo "cargo test failed; see above"; exit 1; }
    fi

# A real single-node Slurm: installs slurm-wlm and munge with apt when missing, starts munged,
# slurmctld and slurmd, and runs a 4-shard prepare and a 2-seed sweep through sbatch.
test-slurm: setup
    cargo build -p valar-cli
    scripts/test-slurm.sh

# Build the `valar` wheel (the binary plus a dependency on PyPI's onnxruntime) into target/wheels/.
wheel:
    scripts/build-wheel.sh

# No cargo and no .ort/ are in reach there: what `pip install valar` gives a user.
# Install the wheel into a fresh venv outside the checkout and run the demo pipeline from it.
test-wheel:
    scripts/test-wheel.sh

# Format the code.
fmt:
    cargo fmt --all

# Lint: rustfmt check and clippy with warnings as errors; production code (not tests) also
# keeps every function under clippy.toml's 80 lines and 7 arguments.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo clippy --workspace --lib --bins -- -D warnings -W clippy::too_many_lines

# Benchmark valar prepare against pandas + Pillow (draft) with 2 processes.
bench-prep: build
    scripts/bench-prep.sh

# Benchmark a training step and inference against PyTorch on CPU.
bench-train: setup
    scripts/bench-train.sh

# Train PyTorch's reference recipe and valar's recipes side by side on the hard synthetic set
# (BENCH_SEEDS seeds, default 3); prints test CCC/RMSE, mean ± sd, beside the mean baseline.
bench-quality: setup build
    scripts/bench-quality.sh

# CHECK_CUDA_DEVICE=cpu runs its plumbing on the CPU where no GPU is (it proves nothing about CUDA).
# On an NVIDIA GPU machine: install ONNX Runtime's CUDA build and PyTorch, train every network on
# CUDA and on the CPU from one seed, check the losses agree, and time both against PyTorch.
check-cuda:
    scripts/check-cuda.sh

# Fuzz the CSV readers, the .npy label reader and the face decoder with cargo-fuzz (nightly),
# SECONDS each (default 600); prints executions and crashes per target.
fuzz seconds="600" *targets:
    scripts/fuzz.sh {{seconds}} {{targets}}

# Benchmark valar audit (release) on 20,000 synthetic images (BENCH_IMAGES); prints faces/s.
bench-audit: build
    scripts/bench-audit.sh
