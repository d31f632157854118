#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs every test; then
# builds again with ASan and UBSan and runs every test once more under them
# (scripts/sanitize.sh). --no-sanitize skips the second half (a quick local
# run; CI runs both).
set -euo pipefail
cd "$(dirname "$0")/.."
sanitize=1
for argument in "$@"; do
  case "$argument" in
    --no-sanitize) sanitize=0 ;;
    *) echo "scripts/test.sh: unknown argument '$argument' (the one it takes is --no-sanitize)" >&2; exit 2 ;;
  esac
done
bash scripts/install-deps.sh
bash scripts/build.sh -DMIPIN_BUILD_TESTS=ON
# One test process per core: the tests are independent (each writes under
# its own temporary directory), and run one at a time they take twice as long.
(cd build && ctest --output-on-failure --timeout 900 -j "$(nproc)")
if ((sanitize)); then
  bash scripts/sanitize.sh
fi
