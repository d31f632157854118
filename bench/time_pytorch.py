#!/usr/bin/env python3
"""Times a TorchScript model in Python PyTorch: the forward pass, and the
gradient of each example's target logit with respect to the input (argmax
targets, torch.autograd.grad, the way Captum computes saliency). Prints one
JSON object: medians in milliseconds over --reps alternating repetitions.

Example: python3 bench/time_pytorch.py --model bench/models/cnn.pt --input-shape 1,28,28 --batch 64
"""
import argparse
import json
import statistics
import time

import torch


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--input-shape", required=True, help="per example, e.g. 3,224,224")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    model = torch.jit.load(a.model).eval()
    shape = [a.batch] + [int(d) for d in a.input_shape.split(",")]
    torch.manual_seed(0)
    x = torch.randn(shape)
    with torch.no_grad():
        targets = model(x).argmax(1)
    rows = torch.arange(a.batch)

    def forward():
        with torch.no_grad():
            model(x)

    def gradient():
        xi = x.detach().requires_grad_(True)
        logits = model(xi)
        (g,) = torch.autograd.grad(logits[rows, targets].sum(), xi)
        return g

    for _ in range(3):  # warm-up, and TorchScript's profiling runs
        forward()
        gradient()
    fwd, grad = [], []
    for _ in range(a.reps):
        t = time.perf_counter()
        forward()
        fwd.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        gradient()
        grad.append((time.perf_counter() - t) * 1e3)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(),
                      "forward_ms": statistics.median(fwd), "gradient_ms": statistics.median(grad),
                      "forward_samples": fwd, "gradient_samples": grad}))


if __name__ == "__main__":
    main()
