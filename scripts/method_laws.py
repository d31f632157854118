#!/usr/bin/env python3
"""Measures each method's law on a Fashion-MNIST model (the zoo ViT of
`mipin train --arch vit`): the gradient against float64 autograd, IG's
completeness with 64 steps, DeepLIFT's summation to f(x) - f(0), and
LRP-epsilon's conservation on the model with every bias set to zero
(AttnLRP's rules, and the attention weights held constant).
Relative errors per example; prints JSON.

Example: PYTHONPATH=build/python python3 scripts/method_laws.py vit.pt 64
"""
import sys, json, torch, numpy as np
import mipin
torch.set_num_threads(2)
path = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 64
m = torch.jit.load(path).eval()
import gzip
# Debian's dataset-fashion-mnist package.
data = gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read()
x = torch.tensor(np.frombuffer(data, np.uint8, offset=16)[: n * 784].reshape(n, 1, 28, 28).astype(np.float32) / 255)
with torch.no_grad():
    logits = m(x)
t = logits.argmax(1)
rows = torch.arange(n)
out = {}
# gradient vs autograd (float64 reference)
m64 = torch.jit.load(path).eval().double()
x64 = x.double().requires_grad_(True)
(g64,) = torch.autograd.grad(m64(x64)[rows, t].sum(), x64)
x32 = x.clone().requires_grad_(True)
(g32,) = torch.autograd.grad(m(x32)[rows, t].sum(), x32)
g = mipin.method("gradient").attribute(m, x, target=t)
scale = g64.abs().max().item()
out["gradient_vs_float64"] = (g.double() - g64).abs().max().item() / scale
out["autograd32_vs_float64"] = (g32.double() - g64).abs().max().item() / scale
with torch.no_grad():
    f0 = m(torch.zeros_like(x))[rows, t]
delta = (logits[rows, t] - f0).double()
def rel(a):
    s = a.double().flatten(1).sum(1)
    return ((s - delta).abs() / delta.abs().clamp_min(1e-12))
ig = mipin.method("integrated-gradients", steps=64).attribute(m, x, target=t)
out["ig64_completeness_rel_max"] = rel(ig).max().item()
out["ig64_completeness_rel_median"] = rel(ig).median().item()
dl = mipin.method("deeplift").attribute(m, x, target=t)
out["deeplift_sum_rel_max"] = rel(dl).max().item()
out["deeplift_sum_rel_median"] = rel(dl).median().item()
out["deeplift_sum_rel_within_1e-4"] = (rel(dl) <= 1e-4).double().mean().item()
# float32's floor: the sum's error against the map's mass sum |map|, which
# cancels down to f(x) - f(0); IG's mass beside it for scale.
mass = dl.double().flatten(1).abs().sum(1)
out["deeplift_sum_error_over_mass_max"] = ((dl.double().flatten(1).sum(1) - delta).abs() / mass).max().item()
out["deeplift_mass_median"] = mass.median().item()
out["deeplift_mass_max"] = mass.max().item()
out["ig64_mass_median"] = ig.double().flatten(1).abs().sum(1).median().item()
out["deeplift_fallback_nodes"] = len(mipin.method("deeplift").fallback_nodes(mipin.Model(m, input_shape=(1, 28, 28))))
# LRP-epsilon on the bias-free model: every bias (linear, conv, LayerNorm) set to zero
mb = torch.jit.load(path).eval()
with torch.no_grad():
    for name, p in mb.named_parameters():
        if name.endswith("_bias"):
            p.zero_()
    lb = mb(x)
tb = lb.argmax(1)
r = mipin.method("lrp-epsilon").attribute(mb, x, target=tb)
cons = (r.double().flatten(1).sum(1) - lb[rows, tb].double()).abs() / lb[rows, tb].double().abs()
out["lrp_epsilon_biasfree_conservation_rel_max"] = cons.max().item()
out["lrp_epsilon_biasfree_conservation_rel_median"] = cons.median().item()
# The same with the class token and positional embedding (constants, which
# absorb relevance as biases do) zeroed too: what is left is softmax's
# linearisation bias (AttnLRP's rule).
with torch.no_grad():
    for name, p in mb.named_parameters():
        if name in ("class_token", "position"):
            p.zero_()
    lc = mb(x)
tc = lc.argmax(1)
rc = mipin.method("lrp-epsilon").attribute(mb, x, target=tc)
cons = (rc.double().flatten(1).sum(1) - lc[rows, tc].double()).abs() / lc[rows, tc].double().abs()
out["lrp_epsilon_no_constants_conservation_rel_max"] = cons.max().item()
out["lrp_epsilon_no_constants_conservation_rel_median"] = cons.median().item()
# The attention weights held constant (value-path, CP-LRP): no softmax
# linearisation, so nothing is left to absorb relevance.
rv = mipin.method("lrp-epsilon", attention="value-path").attribute(mb, x, target=tc)
cons = (rv.double().flatten(1).sum(1) - lc[rows, tc].double()).abs() / lc[rows, tc].double().abs()
out["lrp_epsilon_value_path_no_constants_conservation_rel_max"] = cons.max().item()
out["lrp_epsilon_value_path_no_constants_conservation_rel_median"] = cons.median().item()
# The default stabiliser (1e-6) absorbs what reaches near-zero outputs; at
# 1e-8 what is left is float32 rounding.
rv = mipin.method("lrp-epsilon", attention="value-path", epsilon=1e-8).attribute(mb, x, target=tc)
cons = (rv.double().flatten(1).sum(1) - lc[rows, tc].double()).abs() / lc[rows, tc].double().abs()
out["lrp_epsilon1e-8_value_path_no_constants_conservation_rel_max"] = cons.max().item()
print(json.dumps(out, indent=1))
