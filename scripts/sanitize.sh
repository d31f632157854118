#!/usr/bin/env bash
# Builds everything with AddressSanitizer and UndefinedBehaviorSanitizer
# (clang, in ./build-sanitize) and runs the whole test suite under them: the
# C++ tests and the tool they run, the Python module's tests (python itself
# is not instrumented: the sanitizer runtime is preloaded into it), the
# installed package, and each fuzz harness over its corpus and regressions.
# Any sanitizer report fails the test that made it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ \
  -DMIPIN_SANITIZE=ON -DMIPIN_BUILD_TESTS=ON "$@"
cmake --build build-sanitize
cd build-sanitize
# The torchvision zoo runs in the plain build only (tests/CMakeLists.txt).
ctest --output-on-failure --timeout 1800 -j "$(nproc)" -E TorchvisionZoo
