#!/usr/bin/env bash
# Builds the `valar` wheel into target/wheels/ with maturin (installed from PyPI when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -m maturin --version >/dev/null 2>&1; then
  echo "Installing maturin from PyPI ..."
  python3 -m pip install --quiet "maturin>=1.9,<2"
fi
python3 -m maturin build --release --out target/wheels
