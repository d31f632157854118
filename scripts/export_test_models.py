#!/usr/bin/env python3
"""Exports the models the test suite imports, the way PyTorch users do.

Every model is saved with torch.jit.save, traced or scripted, together with a
"mipin.json" extra file naming its input shape (mipin reads it when present and
accepts --input-shape otherwise). Weights are random: the tests compare the
imported network with the TorchScript module itself, so no training is needed.

Usage: export_test_models.py --out DIR [--only NAME ...] [--without-torchvision-zoo]
"""
import argparse
import json
import os
import sys

import torch
from torch import nn
import torch.nn.functional as F
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


class FunctionalResidual(nn.Module):
    """Residual blocks written with functional ops, `x + f(x)`, as scripted
    modules often are: a BatchNorm before the add (pre-activation), a
    branch read twice, a dense residual and an in-place ReLU."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.pre = nn.BatchNorm2d(8)
        self.fc1 = nn.Linear(8, 8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        x = F.relu(self.stem(x))
        y = F.relu(self.bn1(self.conv1(x)))
        x = x + self.conv2(y)
        x = x + F.relu_(self.pre(x))
        x = torch.mean(x, [2, 3])
        return self.fc2(F.relu(self.fc1(x)) + x)


class SqueezeExcite(nn.Module):
    """A gated block: channel weights from a sigmoid multiply the features
    (squeeze-and-excitation), with SiLU activations, as EfficientNet has."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.squeeze = nn.Conv2d(8, 4, 1)
        self.excite = nn.Conv2d(4, 8, 1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = F.silu(self.conv(x))
        s = F.adaptive_avg_pool2d(x, 1)
        s = torch.sigmoid(self.excite(F.silu(self.squeeze(s))))
        x = s * x
        x = x.mean((2, 3), keepdim=True)
        return self.fc(x.view(x.size(0), x.size(1)))


def activation_mlp(activation):
    """An MLP with one kind of activation, for import and gradient parity."""
    return lambda: nn.Sequential(nn.Linear(20, 32), activation(), nn.Linear(32, 16), activation(),
                                 nn.Linear(16, 4))


# Every activation mipin maps, as a module (some in place).
ACTIVATIONS = {
    "leaky_relu": lambda: nn.LeakyReLU(0.1),
    "elu": lambda: nn.ELU(0.7, inplace=True),
    "gelu": nn.GELU,
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
    "silu": lambda: nn.SiLU(inplace=True),
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "softplus": lambda: nn.Softplus(beta=2.0, threshold=5.0),
    "hardtanh": lambda: nn.Hardtanh(-0.5, 1.5),
    "relu6": lambda: nn.ReLU6(inplace=True),
    "hardsigmoid": nn.Hardsigmoid,
    "hardswish": nn.Hardswish,
}


class Product(nn.Module):
    """Two activations of one shape multiplied: no gate, which mipin refuses."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 4)
        self.b = nn.Linear(6, 4)

    def forward(self, x):
        return self.a(x) * self.b(x)


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


class SequenceClassifier(nn.Module):
    """An LSTM or GRU over [time, features], classified from its last step."""

    def __init__(self, cell):
        super().__init__()
        self.rnn = cell(input_size=6, hidden_size=12, num_layers=2, batch_first=True)
        self.head = nn.Linear(12, 3)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


class TransformerClassifier(nn.Module):
    """nn.TransformerEncoder over [tokens, features]: embedding, two
    encoder layers, the mean over tokens, a linear head."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(10, 16)
        layer = nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, dropout=0.1,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2)
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        return self.head(self.encoder(self.embed(x)).mean(dim=1))


class MaskedTransformerClassifier(TransformerClassifier):
    """The same with a causal mask: attention import must not rewrite
    (it keeps the masked attention as one op run by TorchScript)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mask", torch.triu(torch.full((8, 8), float("-inf")), diagonal=1))

    def forward(self, x):
        return self.head(self.encoder(self.embed(x), mask=self.mask).mean(dim=1))


def conv1d_net():
    return nn.Sequential(nn.Conv1d(3, 8, 5, padding=2), nn.BatchNorm1d(8), nn.ReLU(), nn.MaxPool1d(2),
                         nn.Conv1d(8, 16, 3), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                         nn.Linear(16, 4))


def layernorm_mlp():
    return nn.Sequential(nn.Linear(20, 32), nn.LayerNorm(32), nn.GELU(), nn.Linear(32, 32),
                         nn.LayerNorm(32), nn.GELU(), nn.Linear(32, 4))


def small_vit():
    # torchvision's VisionTransformer (vit_b_16's class) at a size tests can afford.
    return torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                                hidden_dim=32, mlp_dim=64, num_classes=10)


def small_swin(v2=False):
    from torchvision.models import swin_transformer as swin
    extra = dict(block=swin.SwinTransformerBlockV2, downsample_layer=swin.PatchMergingV2) if v2 else {}
    return swin.SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 4],
                                window_size=[4, 4], num_classes=10, **extra)


def small_convnext():
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt
    return ConvNeXt([CNBlockConfig(16, 32, 1), CNBlockConfig(32, None, 1)], num_classes=10)


def models():
    """name -> (builder, input shape, 'trace' | 'trace_grad' | 'trace_f64' | 'script'); 'trace'
    traces under torch.no_grad(), 'trace_grad' without it, 'trace_f64' in float64."""
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
        # Graphs: residual adds, concatenations, gates, every activation. Small
        # images keep the tests fast; the layers are the real ones.
        "resnet18.pt": (lambda: randomize_batchnorm(torchvision.models.resnet18(weights=None)),
                        [3, 64, 64], "trace"),
        "resnet50.pt": (lambda: randomize_batchnorm(torchvision.models.resnet50(weights=None)),
                        [3, 64, 64], "trace"),
        "mobilenet_v2.pt": (lambda: randomize_batchnorm(torchvision.models.mobilenet_v2(weights=None)),
                            [3, 64, 64], "trace"),
        "densenet121.pt": (lambda: randomize_batchnorm(torchvision.models.densenet121(weights=None)),
                           [3, 64, 64], "trace"),
        "residual_scripted.pt": (lambda: randomize_batchnorm(FunctionalResidual()), [3, 12, 12],
                                 "script"),
        "squeeze_excite_scripted.pt": (SqueezeExcite, [3, 12, 12], "script"),
        **{f"act_{name}.pt": (activation_mlp(make), [20], "trace")
           for name, make in ACTIVATIONS.items()},
        # Ops mipin has no layer for, run as TorchScript runs them:
        # transformers and sequence models, traced with and without no_grad
        # (under it PyTorch records the fused fast paths of attention).
        "lstm.pt": (lambda: SequenceClassifier(nn.LSTM), [10, 6], "trace"),
        "gru.pt": (lambda: SequenceClassifier(nn.GRU), [10, 6], "trace"),
        # The same weights in float64 (the trace fixes the initial state's
        # dtype): the tests' float64 autograd reference.
        "lstm_f64.pt": (lambda: SequenceClassifier(nn.LSTM), [10, 6], "trace_f64"),
        "gru_f64.pt": (lambda: SequenceClassifier(nn.GRU), [10, 6], "trace_f64"),
        "transformer_encoder.pt": (TransformerClassifier, [8, 10], "trace"),
        "transformer_encoder_grad.pt": (TransformerClassifier, [8, 10], "trace_grad"),
        "transformer_masked_grad.pt": (MaskedTransformerClassifier, [8, 10], "trace_grad"),
        "conv1d.pt": (lambda: randomize_batchnorm(conv1d_net()), [3, 32], "trace"),
        "layernorm_mlp.pt": (layernorm_mlp, [20], "trace"),
        "vit_small.pt": (small_vit, [3, 32, 32], "trace"),
        "vit_small_grad.pt": (small_vit, [3, 32, 32], "trace_grad"),
        "swin_small.pt": (small_swin, [3, 32, 32], "trace"),
        "swin_v2_small.pt": (lambda: small_swin(v2=True), [3, 32, 32], "trace"),
        "convnext_small.pt": (small_convnext, [3, 32, 32], "trace"),
        "shufflenet_v2_x0_5.pt": (lambda: randomize_batchnorm(
            torchvision.models.shufflenet_v2_x0_5(weights=None)), [3, 64, 64], "trace"),
        "mish_mlp.pt": (lambda: nn.Sequential(nn.Linear(6, 4), nn.Mish(), nn.Linear(4, 2)), [6], "trace"),
        "product_scripted.pt": (Product, [6], "script"),
        **torchvision_zoo(),
    }


# One classifier of every torchvision family the files above do not hold
# already (resnet18, densenet121, mobilenet_v2, shufflenet_v2_x0_5, vgg16,
# vgg11_bn), full size, random weights and BatchNorm statistics, traced at
# the smallest input the family takes comfortably (the layers are the same
# at any size). Transformers are traced with and without no_grad: under it
# PyTorch records the fused attention fast paths.
TORCHVISION_ZOO = {
    "alexnet": [3, 64, 64], "resnext50_32x4d": [3, 64, 64], "wide_resnet50_2": [3, 64, 64],
    "squeezenet1_1": [3, 64, 64], "inception_v3": [3, 96, 96], "googlenet": [3, 64, 64],
    "mobilenet_v3_small": [3, 64, 64], "mnasnet0_5": [3, 64, 64], "efficientnet_b0": [3, 64, 64],
    "efficientnet_v2_s": [3, 64, 64], "regnet_x_400mf": [3, 64, 64], "regnet_y_400mf": [3, 64, 64],
    "convnext_tiny": [3, 64, 64], "vit_b_16": [3, 224, 224], "swin_t": [3, 64, 64], "swin_v2_t": [3, 64, 64],
    "maxvit_t": [3, 224, 224],
}
TRANSFORMERS = {"vit_b_16"}


def torchvision_zoo():
    def build(arch):
        return lambda: randomize_batchnorm(getattr(torchvision.models, arch)(weights=None))
    out = {}
    for arch, shape in TORCHVISION_ZOO.items():
        out[f"tv_{arch}.pt"] = (build(arch), shape, "trace")
        if arch in TRANSFORMERS:
            out[f"tv_{arch}_grad.pt"] = (build(arch), shape, "trace_grad")
    return out


def export(name, builder, shape, how, out_dir):
    torch.manual_seed(0)
    model = builder().eval()
    example = torch.randn(2, *shape)
    if how == "trace_f64":
        with torch.no_grad():
            module = torch.jit.trace(model.double(), example.double())
    elif how == "trace_grad":
        # Its check re-traces and compares graph text, which differs by
        # mangled module names alone for some modules.
        module = torch.jit.trace(model, example, check_trace=False)
    else:
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
    parser.add_argument("--without-torchvision-zoo", action="store_true",
                        help="leave out the full-size torchvision classifiers (tv_*.pt)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    for name, (builder, shape, how) in models().items():
        if args.only and name not in args.only:
            continue
        if args.without_torchvision_zoo and name.startswith("tv_"):
            continue
        export(name, builder, shape, how, args.out)
        print(f"exported {name} ({how}, input {shape})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
