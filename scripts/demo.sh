#!/usr/bin/env bash
# The demo: installs what is missing, builds, trains the default CNN on
# Fashion-MNIST (or reuses it) and shows what mipin sees in it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
mkdir -p demo
if [ ! -f demo/cnn.pt ]; then
  ./build/mipin train --arch cnn --data fashion-mnist --epochs 3 --seed 1 --out demo/cnn.pt
fi
./build/mipin info demo/cnn.pt
