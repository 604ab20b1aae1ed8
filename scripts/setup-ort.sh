#!/usr/bin/env bash
# Fetches ONNX Runtime's shared library from PyPI (the only registry reachable here)
# and unpacks it into .ort/ at the repository root, where valar looks by default.
#   scripts/setup-ort.sh          CPU build  -> .ort/libonnxruntime.so.1.31.1
#   scripts/setup-ort.sh --cuda   CUDA build -> .ort-cuda/ (needs an NVIDIA driver to use)
set -euo pipefail
ORT_VERSION=1.31.1
root=$(cd "$(dirname "$0")/.." && pwd)
pkg=onnxruntime; dest="$root/.ort"
if [ "${1:-}" = "--cuda" ]; then pkg=onnxruntime-gpu; dest="$root/.ort-cuda"; fi
lib="$dest/libonnxruntime.so.$ORT_VERSION"
# The tests check faces.npy with numpy itself, the way users will load it, and load every
# exported network in Python's onnxruntime (the same release as the library below).
python3 -c "import numpy" 2>/dev/null || python3 -m pip install --quiet numpy
python3 -c "import onnxruntime" 2>/dev/null || python3 -m pip install --quiet "onnxruntime==$ORT_VERSION"
# The tests also run the README's Python (Pillow), read model.onnx's metadata with onnx, and
# read the TensorBoard event files back with tensorboard's own reader.
python3 -c "import PIL, onnx, tensorboard" 2>/dev/null || python3 -m pip install --quiet pillow onnx tensorboard
if [ -f "$lib" ]; then echo "ONNX Runtime $ORT_VERSION already in $dest"; exit 0; fi

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "Fetching $pkg==$ORT_VERSION from PyPI ..."
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "$pkg==$ORT_VERSION"
wheel=$(ls "$tmp"/*.whl)
mkdir -p "$dest.partial"
python3 - "$wheel" "$dest.partial" <<'PY'
import sys, zipfile, os
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        base = os.path.basename(name)
        if "/capi/" in name and base.startswith("libonnxruntime"):
            with z.open(name) as src, open(os.path.join(out, base), "wb") as dst:
                dst.write(src.read())
PY
ln -sf "libonnxruntime.so.$ORT_VERSION" "$dest.partial/libonnxruntime.so"
rm -rf "$dest"; mv "$dest.partial" "$dest"
if [ "$pkg" = onnxruntime-gpu ]; then
  echo "For CUDA 13 and cuDNN 9 also run: python3 -m pip install \"onnxruntime-gpu[cuda,cudnn]==$ORT_VERSION\""
fi
echo "ONNX Runtime $ORT_VERSION unpacked to $dest (set ORT_DYLIB_PATH=$lib to use it from elsewhere)"
