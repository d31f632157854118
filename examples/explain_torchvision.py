"""Explain a torchvision ResNet-18 from Python and write a faithfulness report.

The network is torchvision's own resnet18 (one input channel, ten classes),
trained here for a short while on Fashion-MNIST so that its explanations
mean something; nothing is downloaded. Then mipin fits MIP-IN's inverse from
a DataLoader, explains eight test images with MIP-IN and integrated
gradients, saves their heatmaps and overlays, and writes report.html with
every metric of the chosen methods.

    PYTHONPATH=build/python /usr/bin/python3 examples/explain_torchvision.py --out example-report
    (or, after `cmake --install build`, plain /usr/bin/python3)
"""
import argparse
import os
import time

import torch
import torchvision

import mipin


def train(module, loader, steps):
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    module.train()
    step = 0
    while step < steps:
        for x, y in loader:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(module(x), y).backward()
            optimizer.step()
            step += 1
            if step == steps:
                break
    return module.eval()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="example-report")
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--fit-examples", type=int, default=2000)
    parser.add_argument("--eval-examples", type=int, default=200)
    args = parser.parse_args()
    torch.manual_seed(0)

    # Fashion-MNIST as mipin reads it (x normalised to [0, 1], labels, names).
    x_train, y_train, _ = mipin.load_data("fashion-mnist", "train", 0, 20000)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_train, y_train), batch_size=64,
                                         shuffle=True)
    resnet = torchvision.models.resnet18(num_classes=10)
    resnet.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    start = time.time()
    train(resnet, loader, args.train_steps)
    print(f"trained torchvision resnet18 for {args.train_steps} steps in {time.time() - start:.0f} s")

    model = mipin.Model(resnet, input_shape=(1, 28, 28))  # traced here, in eval mode
    inverse = mipin.fit_inverse(model, loader, examples=args.fit_examples)
    x, y, names = mipin.load_data("fashion-mnist", "test", 0, 8)
    os.makedirs(args.out, exist_ok=True)
    for method in (mipin.MipIn(model, inverse), mipin.IntegratedGradients(model, steps=32)):
        maps = method.attribute(x, target="predicted")
        for i in range(len(x)):
            mipin.visualize(maps[i], x[i], save=os.path.join(args.out, f"{method.name}_{i}"))
    metrics = mipin.evaluate(model, "fashion-mnist", methods=["mipin", "integrated-gradients", "gradient", "random"],
                             inverse=inverse, examples=args.eval_examples, out=args.out, steps=32)
    for name, m in metrics["methods"].items():
        print(f"{name:<22} completeness (agreement) {m['completeness']['agreement']:.3f}   minimality (agreement) {m['minimality']['agreement']:.3f}")
    print(f"wrote {args.out}/report.html (open it in a browser) and heatmaps/overlays as PNG")


if __name__ == "__main__":
    main()
