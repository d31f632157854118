#!/usr/bin/env bash
# The demo: installs what is missing, builds, trains the default CNN on
# Fashion-MNIST (or reuses it), fits its MIP-IN inverse, explains 16 test
# images into demo/maps/grid.png, measures completeness and minimality, and
# ends with demo/report/report.html: MIP-IN against every baseline on every
# faithfulness metric.
set -euo pipefail
cd "$(dirname "$0")/.."
# Only what the demo needs: the library and the tool (no tests, benchmark or
# the browser the report test uses).
bash scripts/install-deps.sh demo
MIPIN_BUILD_TARGET=mipin_cli bash scripts/build.sh -DMIPIN_BUILD_TESTS=OFF
mipin=./build/mipin
mkdir -p demo

echo "== 1. the model: the default CNN on Fashion-MNIST"
if [ ! -f demo/cnn.pt ]; then
  $mipin train --arch cnn --data fashion-mnist --epochs 3 --seed 1 --out demo/cnn.pt
else
  echo "reusing demo/cnn.pt (delete it to train again)"
fi
$mipin info demo/cnn.pt

echo "== 2. fit the MIP-IN inverse, layer by layer from the top"
if [ ! -f demo/cnn.mipin ] || [ demo/cnn.mipin -ot demo/cnn.pt ]; then
  $mipin fit --model demo/cnn.pt --data fashion-mnist --examples 20000 --out demo/cnn.mipin
else
  echo "reusing demo/cnn.mipin"
fi

echo "== 3. explain 16 test images (the predicted class's source signal times the input)"
$mipin explain --model demo/cnn.pt --method mipin --inverse demo/cnn.mipin \
  --data fashion-mnist --split test --index 0:16 --out demo/maps
$mipin explain --model demo/cnn.pt --method gradient \
  --data fashion-mnist --split test --index 0:16 --out demo/gradient-maps > /dev/null
echo "gradient maps of the same images for comparison: demo/gradient-maps/grid.png"

echo "== 4. how faithful is it? (all 10,000 test images)"
$mipin evaluate --model demo/cnn.pt --inverse demo/cnn.mipin --data fashion-mnist \
  --metrics completeness,minimality,additivity --out demo/eval

echo "== 5. MIP-IN against every baseline, every metric: the report"
if [ ! -f demo/cnn.patterns ] || [ demo/cnn.patterns -ot demo/cnn.pt ]; then
  $mipin fit --method pattern --model demo/cnn.pt --data fashion-mnist --examples 5000 --out demo/cnn.patterns
fi
$mipin evaluate --model demo/cnn.pt --inverse demo/cnn.mipin --patterns demo/cnn.patterns \
  --data fashion-mnist --methods all --metrics all --examples 300 \
  --randomization-examples 16 --refit-examples 1000 --out demo/report > demo/report.txt
echo "every number: demo/report.txt and demo/report/metrics.json"
echo "open demo/report/report.html in a browser"
