#!/usr/bin/env python3
"""Compares mipin's LRP and DeepLIFT maps on the demo CNN with Zennit 0.5.1's
and Captum's, on the first --examples Fashion-MNIST test images (the
predicted class, relevance starting at its logit, DeepLIFT from a zero
reference). Prints, per image, max |mipin - peer| / max |peer| (the worst and
median image) and how far each DeepLIFT's sum is from f(x) - f(0).

Neither library is a dependency of mipin: put their sources on the path, e.g.
    git clone https://github.com/chr5tphr/zennit && git -C zennit checkout 0.5.1
    git clone https://github.com/pytorch/captum
    PYTHONPATH=zennit/src:captum python3 bench/peer_conventions.py --model demo/cnn.pt

The model must have the demo CNN's layers (`mipin train --arch cnn`): the
peers hook torch.nn layer types, so its weights are copied into the same
layers as a torch.nn.Sequential.
"""
import argparse
import gzip
import os
import subprocess
import tempfile

import numpy as np
import torch


def demo_cnn(scripted):
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(3136, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)).eval()
    params = list(scripted.state_dict().values())
    mine = list(model.parameters())
    if len(params) != len(mine) or any(a.shape != b.shape for a, b in zip(params, mine)):
        raise SystemExit("the model does not have the demo CNN's layers (mipin train --arch cnn)")
    with torch.no_grad():
        for a, b in zip(mine, params):
            a.copy_(b)
    return model


def fashion_mnist_test(n):
    with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:n]
    return (images.astype(np.float64) / 255).astype(np.float32)  # mipin's normalisation of fashion-mnist


def mipin_maps(mipin, model, x_file, n, method, options, out):
    subprocess.run([mipin, "explain", "--model", model, "--method", method, *options, "--input", x_file,
                    "--out", out], check=True, stdout=subprocess.DEVNULL)
    return np.stack([np.load(os.path.join(out, f"x_{i}.npy")) for i in range(n)]).reshape(n, 1, 28, 28)


def report(name, mine, peer):
    scale = np.abs(peer).reshape(len(peer), -1).max(1)
    r = np.abs(mine - peer).reshape(len(peer), -1).max(1) / scale
    print(f"{name:64s} worst {r.max():.3g}  median {np.median(r):.3g}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--mipin", default="build/mipin")
    p.add_argument("--examples", type=int, default=64)
    a = p.parse_args()
    from captum.attr import DeepLift
    from zennit.attribution import Gradient
    from zennit.composites import LayerMapComposite
    from zennit.rules import AlphaBeta, Pass, ZPlus
    from zennit.types import Activation, Convolution, Linear

    scripted = torch.jit.load(a.model)
    model = demo_cnn(scripted)
    n = a.examples
    x = torch.from_numpy(fashion_mnist_test(n))
    with torch.no_grad():
        logits = model(x)
        if not torch.allclose(logits, scripted(x), atol=1e-5):
            raise SystemExit("the copied layers do not compute the model")
        targets = logits.argmax(1)
        delta = (logits - model(torch.zeros_like(x))).gather(1, targets[:, None]).squeeze(1).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        x_file = os.path.join(tmp, "x.npy")
        np.save(x_file, x.numpy())
        for rule_name, rule, options in [
                ("lrp-zplus", ZPlus, []),
                ("lrp-alpha-beta", lambda: AlphaBeta(alpha=2., beta=1.), ["--alpha", "2", "--beta", "1"])]:
            composite = LayerMapComposite(layer_map=[(Activation, Pass()), (Convolution, rule()), (Linear, rule())])
            with Gradient(model=model, composite=composite) as attributor:
                _, zennit = attributor(x.clone().requires_grad_(True),
                                       torch.nn.functional.one_hot(targets, 10).float() * logits)
            zennit = zennit.detach().numpy()
            for convention in ([], ["--bias", "absorb", "--stabilizer", "1e-6"]):
                mine = mipin_maps(a.mipin, a.model, x_file, n, rule_name, options + convention,
                                  os.path.join(tmp, rule_name + "".join(convention)))
                report(f"{rule_name} {' '.join(options + convention)} vs Zennit 0.5.1", mine, zennit)
        captum = DeepLift(model).attribute(x, baselines=torch.zeros_like(x), target=targets).detach().numpy()
        mine = mipin_maps(a.mipin, a.model, x_file, n, "deeplift", [], os.path.join(tmp, "deeplift"))
        report("deeplift vs Captum", mine, captum)
        for name, maps in (("mipin deeplift", mine), ("Captum DeepLift", captum)):
            gap = np.abs(maps.reshape(n, -1).sum(1) - delta) / np.abs(delta)
            print(f"{name:24s} sum vs f(x) - f(0): worst {gap.max():.3g}  mean {gap.mean():.3g}  median {np.median(gap):.3g}")


if __name__ == "__main__":
    main()
