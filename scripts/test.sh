#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh -DMIPIN_BUILD_TESTS=ON
cd build
ctest --output-on-failure --timeout 900
