#!/usr/bin/env bash
# The Python tests' demo CNN: trained briefly, with its inverse and patterns
# fitted by the command-line tool (what the Python results must equal).
set -euo pipefail
cli=$1 out=$2
mkdir -p "$out"
"$cli" train --arch cnn --epochs 1 --examples 3000 --seed 1 --out "$out/cnn.pt" --json > /dev/null
"$cli" fit --model "$out/cnn.pt" --examples 300 --out "$out/cnn.mipin" --json > /dev/null
"$cli" fit --method pattern --model "$out/cnn.pt" --examples 300 --out "$out/cnn.patterns" --json > /dev/null
