#!/usr/bin/env bash
# Configures and builds mipin in ./build (Ninja, Release, precompiled headers).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build build
