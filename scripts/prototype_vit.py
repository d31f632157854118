#!/usr/bin/env python3
"""Trains the ViT of the transformer reading's reference numbers
(docs/design.md, "Measured on the zoo ViT"): 7x7 patches (16 tokens) and a
class token, width 64, 2 pre-LN blocks of 4 heads, MLP 128 with GELU, a
final LayerNorm, the head on the class token; Adam 1e-3, batch 128, 3 epochs
on Fashion-MNIST (pixels / 255). Written as a PyTorch user writes one
(nn.MultiheadAttention) and traced with autograd on.

With STANDARDIZE=1 in the environment the pixels are standardized as the
reference's were, (x / 255 - 0.2860) / 0.3530: mipin's --data
"fashion-mnist?mean=0.2860&std=0.3530".

Usage: [STANDARDIZE=1] python3 scripts/prototype_vit.py OUT.pt [SEED] [PATCH] [BLOCKS]"""
import gzip, json, os, sys

import numpy as np
import torch
import torch.nn as nn

def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)

root = "/usr/share/datasets/fashion-mnist/"
xtr = torch.tensor(idx(root + "train-images-idx3-ubyte.gz"), dtype=torch.float32).unsqueeze(1) / 255
ytr = torch.tensor(idx(root + "train-labels-idx1-ubyte.gz"), dtype=torch.long)
xte = torch.tensor(idx(root + "t10k-images-idx3-ubyte.gz"), dtype=torch.float32).unsqueeze(1) / 255
yte = torch.tensor(idx(root + "t10k-labels-idx1-ubyte.gz"), dtype=torch.long)
if os.environ.get("STANDARDIZE") == "1":
    xtr, xte = (xtr - 0.2860) / 0.3530, (xte - 0.2860) / 0.3530

class Block(nn.Module):
    def __init__(s, w, heads, hidden):
        super().__init__()
        s.norm1, s.attn, s.norm2 = nn.LayerNorm(w, eps=1e-6), nn.MultiheadAttention(w, heads, batch_first=True), nn.LayerNorm(w, eps=1e-6)
        s.mlp = nn.Sequential(nn.Linear(w, hidden), nn.GELU(), nn.Linear(hidden, w))
    def forward(s, t):
        h = s.norm1(t)
        t = t + s.attn(h, h, h, need_weights=False)[0]
        return t + s.mlp(s.norm2(t))

class Vit(nn.Module):
    def __init__(s, patch=7, w=64, blocks=2, heads=4, hidden=128, classes=10):
        super().__init__()
        s.embed = nn.Conv2d(1, w, patch, patch)
        tokens = (28 // patch) ** 2 + 1
        s.cls = nn.Parameter(torch.zeros(1, 1, w))
        s.pos = nn.Parameter(torch.randn(1, tokens, w) * 0.02)
        s.blocks = nn.Sequential(*[Block(w, heads, hidden) for _ in range(blocks)])
        s.norm, s.head = nn.LayerNorm(w, eps=1e-6), nn.Linear(w, classes)
    def forward(s, x):
        t = s.embed(x).flatten(2).transpose(1, 2)
        t = torch.cat([s.cls.expand(x.size(0), -1, -1), t], 1) + s.pos
        return s.head(s.norm(s.blocks(t))[:, 0])

torch.manual_seed(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
torch.set_num_threads(2)
patch = int(sys.argv[3]) if len(sys.argv) > 3 else 7
blocks = int(sys.argv[4]) if len(sys.argv) > 4 else 2
m = Vit(patch=patch, blocks=blocks)
opt = torch.optim.Adam(m.parameters(), 1e-3)
for epoch in range(3):
    perm = torch.randperm(len(xtr))
    m.train()
    for i in range(0, len(xtr), 128):
        b = perm[i:i + 128]
        opt.zero_grad()
        nn.functional.cross_entropy(m(xtr[b]), ytr[b]).backward()
        opt.step()
    m.eval()
    with torch.no_grad():
        acc = sum((m(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item() for i in range(0, 10000, 1000)) / 10000
    print(f"epoch {epoch + 1}: test accuracy {acc:.4f}", flush=True)
traced = torch.jit.trace(m, xte[:2], check_trace=False)
torch.jit.save(traced, sys.argv[1], _extra_files={"mipin.json": json.dumps({"input_shape": [1, 28, 28]})})
