#!/usr/bin/env bash
# Installs the Debian packages valar's build wants and a fresh machine lacks:
#   nasm  libjpeg-turbo's SIMD decoders (mozjpeg-sys builds them when nasm is on the PATH;
#         without it the build still works, but JPEG decoding is several times slower).
set -euo pipefail
missing=()
command -v nasm >/dev/null 2>&1 || missing+=(nasm)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
  echo "warning: ${missing[*]} missing and no root to install it: JPEG decoding will lack SIMD" >&2
  exit 0
fi
echo "Installing ${missing[*]} with apt-get ..."
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
