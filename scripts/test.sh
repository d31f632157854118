#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test
# once. CI (.ci/run) runs this, then the same suite under ASan and UBSan
# (scripts/sanitize.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if (($#)); then
  echo "scripts/test.sh takes no arguments (the sanitized run is bash scripts/sanitize.sh)" >&2
  exit 2
fi
bash scripts/install-deps.sh
bash scripts/build.sh -DMIPIN_BUILD_TESTS=ON
# One test process per core: the tests are independent (each writes under
# its own temporary directory), and run one at a time they take twice as long.
(cd build && ctest --output-on-failure --timeout 900 -j "$(nproc)")
