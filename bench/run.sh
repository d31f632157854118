#!/usr/bin/env bash
# The benchmarks: every method against the forward pass and our gradient
# against Python PyTorch (build/mipin_bench), then fitting cost and the exact
# against the iterative solver (bench/fit_bench.py). Results: bench/results/.
# Usage: bash bench/run.sh [--quick]     (extra arguments go to mipin_bench)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
mkdir -p bench/models bench/results
python=/usr/bin/python3

if [ ! -f bench/models/vgg16.pt ]; then
  echo "== exporting torchvision's VGG16 (random weights) at 3x224x224"
  $python - <<'PY'
import torch, torchvision
torch.manual_seed(0)
model = torchvision.models.vgg16().eval()
traced = torch.jit.trace(model, torch.randn(1, 3, 224, 224))
traced.save("bench/models/vgg16.pt")
PY
fi

echo "== methods against the forward pass, and against Python PyTorch"
./build/mipin_bench --vgg16 bench/models/vgg16.pt --out bench/results "$@"

echo "== fitting: examples, peak memory, exact against iterative solver"
if [ ! -f demo/cnn.pt ]; then
  mkdir -p demo
  ./build/mipin train --arch cnn --data fashion-mnist --epochs 3 --seed 1 --out demo/cnn.pt
fi
$python bench/fit_bench.py --mipin build/mipin --model demo/cnn.pt --out bench/results/fit.json
