#!/usr/bin/env python3
"""What a MIP-IN readout keeps when the model's top layer is re-initialised.

For each readout, on the first --examples Fashion-MNIST test images: the rank
correlation (Spearman) of |map| on the model and |map| on the model with its
top Linear layer re-initialised (the inverse refitted on it, as `mipin
evaluate --metrics randomization` does), over all pixels and over the
object's pixels only (x > 0); how much each |map| follows |x| itself; and
the signed maps' correlation. A map in input units is near 0 wherever the
input is 0 (the background), whatever the model, so over all pixels its
|map| keeps the background-versus-object split.

Example: PYTHONPATH=build/python python3 bench/readout_randomization.py --model demo/cnn.pt --inverse demo/cnn.mipin
"""
import argparse

import numpy as np
import torch

import mipin


def ranks(v):
    """Ranks of v, ties sharing their mean rank (as scipy's rankdata)."""
    order = np.argsort(v, kind="mergesort")
    r = np.empty(len(v))
    r[order] = np.arange(len(v))
    _, group, counts = np.unique(v, return_inverse=True, return_counts=True)
    return (np.bincount(group, weights=r) / counts)[group]


def spearman(a, b, keep=None):
    """Mean over examples of the rank correlation of a[i] and b[i] (on `keep`)."""
    out = []
    for i in range(len(a)):
        k = np.ones(a[i].size, bool) if keep is None else keep[i].ravel()
        out.append(np.corrcoef(ranks(a[i].ravel()[k]), ranks(b[i].ravel()[k]))[0, 1])
    return float(np.mean(out))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--inverse", required=True)
    p.add_argument("--examples", type=int, default=32)
    p.add_argument("--refit-examples", type=int, default=2000)
    p.add_argument("--seed", type=int, default=17)
    a = p.parse_args()
    x, _, _ = mipin.load_data("fashion-mnist", "test", 0, a.examples)
    original = torch.jit.load(a.model)
    randomized = torch.jit.load(a.model)
    torch.manual_seed(a.seed)
    weight, bias = list(randomized.parameters())[-2:]  # the top Linear layer
    with torch.no_grad():  # torch.nn.Linear's own initialisation
        bound = 1 / np.sqrt(weight.shape[1])
        weight.uniform_(-bound, bound)
        bias.uniform_(-bound, bound)
    shape = tuple(x.shape[1:])
    m0, m1 = mipin.Model(original, input_shape=shape), mipin.Model(randomized, input_shape=shape)
    inverse = mipin.load_inverse(a.inverse, m0)
    refitted = mipin.fit_inverse(m1, "fashion-mnist", examples=a.refit_examples, progress=False)
    with torch.no_grad():
        targets = original(x).argmax(1)
    ax = x.abs().numpy()
    obj = ax > 0
    print(f"{a.examples} images; pixels with x = 0: {1 - obj.mean():.3f}")
    print("readout      |map| vs after: all pixels, object | |map| vs |x|: before, after | signed map vs after")
    for readout in ["signal", "contrast", "abs", "times-input"]:
        before = mipin.method("mipin", inverse, readout=readout).attribute(m0, x, target=targets).numpy()
        after = mipin.method("mipin", refitted, readout=readout).attribute(m1, x, target=targets).numpy()
        b, f = np.abs(before), np.abs(after)
        print(f"{readout:12s} {spearman(b, f):.3f}, {spearman(b, f, obj):.3f} | "
              f"{spearman(b, ax):.3f}, {spearman(f, ax):.3f} | {spearman(before, after):.3f}")


if __name__ == "__main__":
    main()
