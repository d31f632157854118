#!/usr/bin/env bash
# Installs the Debian packages mipin needs, only when some are missing.
# Usage: scripts/install-deps.sh        (build, demo, tests and benchmarks)
#        scripts/install-deps.sh demo   (what the library, the tool and the
#                                        demo need: a first run installs less)
set -euo pipefail

packages=(
  # toolchain
  g++ cmake ninja-build git
  # LibTorch, and OpenBLAS so that it does not fall back to the slow reference BLAS
  libtorch-dev libopenblas0-openmp
  # oneDNN's headers (convolutions with primitives and packed weights kept)
  libdnnl-dev
  # Gloo's headers (one fit across processes and machines on torch.distributed's backend)
  libgloo-dev
  # libraries
  libcli11-dev nlohmann-json3-dev zlib1g-dev
  # image codecs, and zip archives checked before LibTorch opens them
  libpng-dev libturbojpeg0-dev libminizip-dev
  # the built-in data set
  dataset-fashion-mnist
)
if [ "${1:-}" != demo ]; then
  packages+=(
    libgtest-dev
    # tests export models from Python exactly as users do
    python3 python3-torch python3-torchvision python3-numpy python3-pil
    # the Python module (import mipin) and its tests
    python3-dev pybind11-dev python3-pytest
    # the report test renders report.html in a real browser (headless)
    chromium fonts-liberation
    # the sanitizer build and the fuzz harnesses (scripts/sanitize.sh, scripts/fuzz.sh):
    # clang with its sanitizer and libFuzzer runtimes, and its OpenMP
    clang libclang-rt-dev libomp-dev
  )
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
