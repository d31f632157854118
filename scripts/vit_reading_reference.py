#!/usr/bin/env python3
"""MIP-IN's transformer reading (docs/design.md section 1.5) written again in
plain torch, in float64, for the ViT scripts/prototype_vit.py trains: an
independent check of mipin's fit and inverse on that model. Fits the inverse
top-down on propagated signals over the first N training images (LayerNorm:
s * sd / g; attention: P^T s to V; adds: fitted per-feature scales; forks:
sum; GELU: the transfer factor; the class token's slot dropped), then prints
completeness and minimality agreement on the 10,000 test images.
FORK=mean or FORK=skip changes the forks' rule; STANDARDIZE=1 standardizes
the pixels as scripts/prototype_vit.py does (for a model trained so).

Usage: [STANDARDIZE=1] python3 scripts/vit_reading_reference.py MODEL.pt [N]"""
import gzip, os, sys

import numpy as np
import torch
torch.set_default_dtype(torch.float64)
torch.set_num_threads(2)
ALPHA = 1e-3
FORK = os.environ.get("FORK", "sum")
def idx(path):
    with gzip.open(path) as f: data = f.read()
    dims = data[3]; shape = [int.from_bytes(data[4+4*i:8+4*i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4+4*dims).reshape(shape)
root = "/usr/share/datasets/fashion-mnist/"
xtr = torch.tensor(idx(root+"train-images-idx3-ubyte.gz"), dtype=torch.float64).unsqueeze(1)/255
xte = torch.tensor(idx(root+"t10k-images-idx3-ubyte.gz"), dtype=torch.float64).unsqueeze(1)/255
if os.environ.get("STANDARDIZE") == "1":
    xtr, xte = (xtr - 0.2860) / 0.3530, (xte - 0.2860) / 0.3530
m = torch.jit.load(sys.argv[1]); P = {k: v.double() for k, v in m.state_dict().items()}
NB = len([k for k in P if k.endswith("attn.in_proj_weight")]); E = P["cls"].shape[-1]; H = 4; D = E // H
patch = P["embed.weight"].shape[-1]
def ln(x, g, b):
    mu = x.mean(-1, keepdim=True); sd = (x.var(-1, unbiased=False, keepdim=True) + 1e-6).sqrt()
    return g * (x - mu) / sd + b, sd
def forward(x):
    r = {}
    n = x.shape[0]
    e = torch.nn.functional.conv2d(x, P["embed.weight"], P["embed.bias"], stride=patch)
    r["embed_in"] = x
    t = e.flatten(2).transpose(1, 2)
    t = torch.cat([P["cls"].expand(n, -1, -1), t], 1) + P["pos"]
    for b in range(NB):
        p = f"blocks.{b}."
        h, sd1 = ln(t, P[p+"norm1.weight"], P[p+"norm1.bias"])
        W, B = P[p+"attn.in_proj_weight"], P[p+"attn.in_proj_bias"]
        q, k, v = (h @ W.T + B).chunk(3, -1)
        sp = lambda z: z.reshape(n, -1, H, D).transpose(1, 2)
        A = torch.softmax(sp(q) @ sp(k).transpose(-1, -2) / D**0.5, -1)
        o = (A @ sp(v)).transpose(1, 2).reshape(n, -1, E)
        a = o @ P[p+"attn.out_proj.weight"].T + P[p+"attn.out_proj.bias"]
        t2 = t + a
        h2, sd2 = ln(t2, P[p+"norm2.weight"], P[p+"norm2.bias"])
        z = h2 @ P[p+"mlp.0.weight"].T + P[p+"mlp.0.bias"]
        g = torch.nn.functional.gelu(z)
        mm = g @ P[p+"mlp.2.weight"].T + P[p+"mlp.2.bias"]
        t3 = t2 + mm
        r[b] = dict(t=t, h=h, sd1=sd1, v=v, A=A, o=o, a=a, t2=t2, h2=h2, sd2=sd2, z=z, g=g, mm=mm)
        t = t3
    hf, sdf = ln(t, P["norm.weight"], P["norm.bias"])
    r["final"] = dict(t=t, hf=hf, sdf=sdf)
    r["cls"] = hf[:, 0]
    y = hf[:, 0] @ P["head.weight"].T + P["head.bias"]
    return y, r
# Fitted parts, in top-down order; each is fitted on the signals the fitted parts above give.
U, Dd = {}, {}
ORDER = ["head", "addf"]  # filled below
def solve(A, Bm):
    lam = ALPHA * torch.trace(A) / A.shape[0]
    if lam <= 0: return torch.zeros_like(Bm)
    return Bm @ torch.linalg.inv(A + lam * torch.eye(A.shape[0]))
def inverse(y, r, stop=None, acc=None):
    """Propagates s = y down; at the part named `stop`, accumulates (signal, target) into acc and stops."""
    n = y.shape[0]
    def fit_or_apply(name, s, target):
        if name == stop:
            s2, x2 = s.reshape(-1, s.shape[-1]), target.reshape(-1, target.shape[-1])
            acc["A"] = acc.get("A", 0) + s2.T @ s2; acc["B"] = acc.get("B", 0) + x2.T @ s2
            raise StopIteration
        return s @ U[name].T
    def scales(name, s, targets):
        if name == stop:
            for k, a in enumerate(targets):
                acc[f"as{k}"] = acc.get(f"as{k}", 0) + (a * s).reshape(-1, E).sum(0)
            acc["ss"] = acc.get("ss", 0) + (s * s).reshape(-1, E).sum(0)
            raise StopIteration
        return [s * Dd[name][k] for k in range(len(targets))]
    s_cls = fit_or_apply("head", y, r["cls"])
    f = r["final"]
    s_hf = torch.zeros_like(f["hf"]); s_hf[:, 0] = s_cls
    s_t = s_hf * f["sdf"] / P["norm.weight"]
    for b in reversed(range(NB)):
        p = f"blocks.{b}."; q = r[b]
        s_t2, s_mm = scales(f"add2_{b}", s_t, [q["t2"], q["mm"]])
        s_g = fit_or_apply(f"fc2_{b}", s_mm, q["g"])
        z = q["z"]; tf = torch.where(z != 0, torch.nn.functional.gelu(z) / z, torch.full_like(z, 0.5))
        s_h2 = fit_or_apply(f"fc1_{b}", s_g * tf, q["h2"])
        s_t2 = s_t2 + s_h2 * q["sd2"] / P[p+"norm2.weight"]
        if FORK == "mean": s_t2 = s_t2 / 2
        s_tskip, s_a = scales(f"add1_{b}", s_t2, [q["t"], q["a"]])
        s_o = fit_or_apply(f"out_{b}", s_a, q["o"])
        so = s_o.reshape(n, -1, H, D).transpose(1, 2)
        s_v = (q["A"].transpose(-1, -2) @ so).transpose(1, 2).reshape(n, -1, E)
        s_h = fit_or_apply(f"v_{b}", s_v, q["h"])
        s_t = s_tskip + s_h * q["sd1"] / P[p+"norm1.weight"]
        if FORK == "mean": s_t = s_t / 2
        if FORK == "skip": s_t = s_tskip
    s_e = s_t[:, 1:]  # the class token's slot dropped
    g = 28 // patch
    x = r["embed_in"]
    xp = x.unfold(2, patch, patch).unfold(3, patch, patch).reshape(n, g * g, patch * patch)  # [n, tokens, 49]
    if stop == "embed":
        s2, x2 = s_e.reshape(-1, E), xp.reshape(-1, patch * patch)
        acc["A"] = acc.get("A", 0) + s2.T @ s2; acc["B"] = acc.get("B", 0) + x2.T @ s2
        raise StopIteration
    sp_ = s_e @ U["embed"].T  # [n, tokens, 49]
    return sp_.reshape(n, g, g, patch, patch).permute(0, 1, 3, 2, 4).reshape(n, 1, 28, 28)
names = ["head"]
for b in reversed(range(NB)):
    names += [f"add2_{b}", f"fc2_{b}", f"fc1_{b}", f"add1_{b}", f"out_{b}", f"v_{b}"]
names += ["embed"]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
for name in names:
    acc = {}
    for i in range(0, N, 500):
        y, r = forward(xtr[i:i+500])
        try: inverse(y, r, stop=name, acc=acc)
        except StopIteration: pass
    if name.startswith("add"):
        lam = ALPHA * acc["ss"].mean()
        Dd[name] = [acc[f"as{k}"] / (acc["ss"] + lam) for k in range(2)]
    else:
        U[name] = solve(acc["A"], acc["B"])
agree = keep = 0
for i in range(0, 10000, 500):
    x = xte[i:i+500]
    y, r = forward(x)
    s = inverse(y, r)
    pred = y.argmax(1)
    agree += (forward(s)[0].argmax(1) == pred).sum().item()
    keep += (forward(x - s)[0].argmax(1) == pred).sum().item()
print(f"completeness agreement {agree/10000:.4f}  minimality agreement {keep/10000:.4f}")
