#!/usr/bin/env bash
# Configures and builds mipin in ./build (Ninja, Release, precompiled headers).
# Arguments go to CMake's configure step (-DMIPIN_BUILD_TESTS=ON, ...);
# MIPIN_BUILD_TARGET=mipin_cli builds the tool and its library alone.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
if [ -n "${MIPIN_BUILD_TARGET:-}" ]; then
  cmake --build build --target "$MIPIN_BUILD_TARGET"
else
  cmake --build build
fi
