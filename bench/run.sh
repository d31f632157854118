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

for arch in vgg16 resnet50 mobilenet_v2 vit_b_16; do
  if [ ! -f bench/models/$arch.pt ]; then
    echo "== exporting torchvision's $arch (random weights) at 3x224x224"
    $python - "$arch" <<'PY'
import sys, torch, torchvision
arch = sys.argv[1]
torch.manual_seed(0)
model = getattr(torchvision.models, arch)().eval()
# Traced with autograd on, as users trace; the trace's own check re-runs
# the model under no_grad, where attention takes its fused path, and would
# report the graphs as different.
traced = torch.jit.trace(model, torch.randn(1, 3, 224, 224), check_trace=False)
traced.save(f"bench/models/{arch}.pt")
PY
  fi
done

echo "== methods against the forward pass, and against Python PyTorch"
./build/mipin_bench --vgg16 bench/models/vgg16.pt --resnet50 bench/models/resnet50.pt \
  --mobilenet-v2 bench/models/mobilenet_v2.pt --vit-b-16 bench/models/vit_b_16.pt --out bench/results "$@"

echo "== fitting: examples, peak memory, exact against iterative solver"
if [ ! -f demo/cnn.pt ]; then
  mkdir -p demo
  ./build/mipin train --arch cnn --data fashion-mnist --epochs 3 --seed 1 --out demo/cnn.pt
fi
$python bench/fit_bench.py --mipin build/mipin --model demo/cnn.pt --out bench/results/fit.json

echo "== the Python module's overhead over the C++ call (batch 64, demo CNN)"
PYTHONPATH=build/python $python bench/python_overhead.py demo/cnn.pt | tee bench/results/python_overhead.txt

echo "== fitting MIP-IN on the zoo's residual network: passes, time, peak memory at 10k and 60k"
if [ ! -f demo/resnet.pt ]; then
  # Three epochs: what a fit costs depends on the graph, not on how well
  # the network was trained.
  ./build/mipin train --arch resnet --data fashion-mnist --epochs 3 --seed 1 --out demo/resnet.pt
fi
$python bench/fit_bench.py --mipin build/mipin --model demo/resnet.pt --methods mipin --sizes 10000,60000 \
  --no-solvers --out bench/results/fit_resnet.json

echo "== one fit on 1, 2 and 4 processes of this machine: time, sums added per pass, difference to one process"
PYTHONPATH=build/python $python bench/distributed_fit.py --mipin build/mipin --model demo/cnn.pt --examples 60000 \
  --out bench/results/distributed_fit.json
