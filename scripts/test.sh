#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh -DMIPIN_BUILD_TESTS=ON
cd build
# One test process per core: the tests are independent (each writes under
# its own temporary directory), and run one at a time they take twice as long.
ctest --output-on-failure --timeout 900 -j "$(nproc)"
