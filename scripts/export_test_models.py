#!/usr/bin/env python3
"""Exports the models the test suite imports, the way PyTorch users do.

Every model is saved with torch.jit.save, traced or scripted, together with a
"mipin.json" extra file naming its input shape (mipin reads it when present and
accepts --input-shape otherwise). Weights are random: the tests compare the
imported network with the TorchScript module itself, so no training is needed.

Usage: export_test_models.py --out DIR [--only NAME ...]
"""
import argparse
import json
import os
import sys

import torch
from torch import nn
import torchvision


def zoo_cnn(classes=10):
    # The design's demo CNN, written as a PyTorch user would.
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, classes))


def zoo_mlp(classes=10):
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128),
                         nn.ReLU(), nn.Linear(128, classes))


def zoo_vgg_mini(classes=10):
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(*block(1, 16), *block(16, 16), nn.MaxPool2d(2),
                         *block(16, 32), *block(32, 32), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(128, classes))


class ViewCnn(nn.Module):
    """A hand-written forward with x.view(x.size(0), -1), AvgPool, stride, groups,
    dilation and a final log_softmax: the graph shapes users' own modules produce."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=2, bias=False)
        self.pool = nn.AvgPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d((2, 2))
        self.fc = nn.Linear(32, 5)

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        x = self.pool(torch.relu(self.conv2(x)))
        x = self.gap(x)
        x = x.view(x.size(0), -1)
        return torch.log_softmax(self.fc(x), dim=1)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)) + x)


def randomize_batchnorm(model):
    # Fresh BatchNorm layers are the identity; give them real statistics so that
    # folding is actually exercised.
    gen = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
    return model


def models():
    """name -> (builder, input shape, 'trace' | 'script')."""
    return {
        "vgg16.pt": (lambda: torchvision.models.vgg16(weights=None), [3, 224, 224], "trace"),
        "vgg11_bn.pt": (lambda: randomize_batchnorm(torchvision.models.vgg11_bn(weights=None)),
                        [3, 224, 224], "trace"),
        "mlp_scripted.pt": (lambda: nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Dropout(0.2),
                                                  nn.Linear(32, 4), nn.Softmax(dim=1)),
                            [20], "script"),
        "zoo_cnn.pt": (zoo_cnn, [1, 28, 28], "trace"),
        "zoo_cnn_scripted.pt": (zoo_cnn, [1, 28, 28], "script"),
        "zoo_mlp.pt": (zoo_mlp, [1, 28, 28], "trace"),
        "zoo_vgg_mini.pt": (lambda: randomize_batchnorm(zoo_vgg_mini()), [1, 28, 28], "trace"),
        "view_cnn.pt": (ViewCnn, [3, 16, 16], "trace"),
        "view_cnn_scripted.pt": (ViewCnn, [3, 16, 16], "script"),
        # Models mipin must refuse, naming the op.
        "unsupported_sigmoid.pt": (lambda: nn.Sequential(nn.Linear(6, 4), nn.Sigmoid(),
                                                         nn.Linear(4, 2)), [6], "trace"),
        "unsupported_residual.pt": (Residual, [8], "script"),
    }


def export(name, builder, shape, how, out_dir):
    torch.manual_seed(0)
    model = builder().eval()
    example = torch.randn(2, *shape)
    with torch.no_grad():
        module = torch.jit.trace(model, example) if how == "trace" else torch.jit.script(model)
    path = os.path.join(out_dir, name)
    tmp = path + ".tmp"
    torch.jit.save(module, tmp, _extra_files={"mipin.json": json.dumps({"input_shape": shape})})
    os.replace(tmp, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="directory for the .pt files")
    parser.add_argument("--only", nargs="*", help="export only these file names")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    for name, (builder, shape, how) in models().items():
        if args.only and name not in args.only:
            continue
        export(name, builder, shape, how, args.out)
        print(f"exported {name} ({how}, input {shape})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
