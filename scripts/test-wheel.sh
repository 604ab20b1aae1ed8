#!/usr/bin/env bash
# Builds valar's wheel (`just wheel`), installs it into a fresh venv outside the checkout and runs
# the demo pipeline from it, with no Rust toolchain and no ONNX Runtime of the checkout in reach:
# what a user who types `pip install valar` gets.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/build-wheel.sh
wheel=$(ls -t target/wheels/valar-*.whl | head -1)

work=$(mktemp -d /tmp/valar-wheel.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "Installing $wheel into a fresh venv in $work ..."
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet "$wheel"

# Only the venv and the system's own folders: no cargo, no checkout, no ORT_DYLIB_PATH.
clean_path="$work/venv/bin:/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin"
if env -i PATH="$clean_path" bash -c 'command -v cargo' >/dev/null; then
  echo "test-wheel: cargo is still on the clean PATH ($clean_path)" >&2
  exit 1
fi
installed=$(env -i PATH="$clean_path" HOME="$work" bash -c 'command -v valar')
[ "$installed" = "$work/venv/bin/valar" ] || { echo "test-wheel: valar resolves to $installed" >&2; exit 1; }

cd "$work"
env -i PATH="$clean_path" HOME="$work" valar --version
env -i PATH="$clean_path" HOME="$work" valar run --out runs/demo
for f in runs/demo/train/model.onnx runs/demo/report/report.md; do
  [ -s "$f" ] || { echo "test-wheel: $f is missing after valar run" >&2; find runs/demo -maxdepth 2 >&2; exit 1; }
done
echo "test-wheel passed: the wheel's valar ran the demo pipeline with the pip-installed ONNX Runtime"
