"""Reference LRP relevances computed with Zennit 0.5.1 itself, for
tests/attribution/test_lrp_conventions.cpp.

Writes, beside this script: model.pt (a small CNN with non-zero biases,
traced), x.npy (inputs with negative values, as normalised images have),
targets.npy (the predicted classes), one relevance file per rule:
epsilon.npy, zplus.npy, alpha2_beta1.npy, and one per composite with a
first-layer rule: flat_zplus.npy, wsquare_zplus.npy, flat_gamma.npy. Relevance starts as the target's
logit (attr_output = one-hot times the logits), as mipin's LRP does.

Zennit is not a dependency of mipin: run this once with Zennit 0.5.1's
source on the path, e.g.
    git clone https://github.com/chr5tphr/zennit && git -C zennit checkout 0.5.1
    PYTHONPATH=zennit/src python3 make_reference.py
and commit what it writes.
"""
import os

import numpy as np
import torch
import zennit
from zennit.attribution import Gradient
from zennit.composites import LayerMapComposite, SpecialFirstLayerMapComposite
from zennit.rules import AlphaBeta, Epsilon, Flat, Gamma, Pass, WSquare, ZPlus
from zennit.types import Activation, Convolution, Linear


here = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
    torch.nn.Conv2d(4, 6, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
    torch.nn.Linear(6 * 6 * 6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 5)).eval()
with torch.no_grad():
    # Biases large enough that where a rule puts them shows.
    for m in model:
        if hasattr(m, "bias") and m.bias is not None:
            m.bias.add_(torch.randn_like(m.bias) * 0.3)
x = torch.randn(6, 1, 12, 12)
with torch.no_grad():
    logits = model(x)
targets = logits.argmax(1)
torch.jit.trace(model, x).save(os.path.join(here, "model.pt"))
np.save(os.path.join(here, "x.npy"), x.numpy())
np.save(os.path.join(here, "targets.npy"), targets.numpy())

rules = {"epsilon": lambda: Epsilon(epsilon=1e-6), "zplus": lambda: ZPlus(),
         "alpha2_beta1": lambda: AlphaBeta(alpha=2., beta=1.)}
for name, rule in rules.items():
    composite = LayerMapComposite(layer_map=[(Activation, Pass()), (Convolution, rule()), (Linear, rule())])
    one_hot = torch.nn.functional.one_hot(targets, 5).float()
    with Gradient(model=model, composite=composite) as attributor:
        _, relevance = attributor(x.clone().requires_grad_(True), one_hot * logits)
    np.save(os.path.join(here, name + ".npy"), relevance.detach().numpy())
    print(name, "relevance sums", relevance.sum((1, 2, 3)).tolist(), "logits", logits.gather(1, targets[:, None]).squeeze(1).tolist())

# Composites with a rule of their own on the first layer and gamma on the
# convolutions, biases left out of the modified rules (mipin's convention,
# zero_params=["bias"]; Flat leaves them out anyway): what lrp-composite's
# first= and conv= options give.
no_bias = ["bias"]
composites = {
    "flat_zplus": (Flat(), ZPlus(zero_params=no_bias)),
    "wsquare_zplus": (WSquare(zero_params=no_bias), ZPlus(zero_params=no_bias)),
    "flat_gamma": (Flat(), Gamma(gamma=0.25, zero_params=no_bias)),
}
for name, (first, conv) in composites.items():
    composite = SpecialFirstLayerMapComposite(
        layer_map=[(Activation, Pass()), (Convolution, conv), (Linear, Epsilon(epsilon=1e-6))],
        first_map=[(Convolution, first)])
    one_hot = torch.nn.functional.one_hot(targets, 5).float()
    with Gradient(model=model, composite=composite) as attributor:
        _, relevance = attributor(x.clone().requires_grad_(True), one_hot * logits)
    np.save(os.path.join(here, name + ".npy"), relevance.detach().numpy())
    print(name, "relevance sums", relevance.sum((1, 2, 3)).tolist())
