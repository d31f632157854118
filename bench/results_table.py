#!/usr/bin/env python3
"""Prints bench/results/methods.json (and fit.json when present) as the
Markdown tables of the README.

Example: python3 bench/results_table.py bench/results
"""
import json
import os
import sys


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else "bench/results"
    j = json.load(open(os.path.join(folder, "methods.json")))
    print(f"CPU: {j.get('cpu', '?')}, {j['threads']} threads.\n")
    columns = []
    for model, m in j["models"].items():
        for batch in m["batches"]:
            columns.append((model, batch))
    methods = []
    for model, batch in columns:
        for name in j["models"][model]["batches"][batch]["methods"]:
            if name not in methods:
                methods.append(name)
    methods.sort(key=lambda n: (n not in ("gradient", "mipin"), n))
    rounds = sorted({b.get("rounds", 1) for m in j["models"].values() for b in m["batches"].values()})
    print("Method time / forward time (medians; each method ran in "
          + " or ".join(str(r) for r in rounds)
          + " processes spread over the run, each alternating forward passes and method calls):\n")
    print("| method | " + " | ".join(f"{m} b{b}" for m, b in columns) + " |")
    print("|---|" + "---|" * len(columns))
    for name in methods:
        cells = []
        for model, batch in columns:
            e = j["models"][model]["batches"][batch]["methods"].get(name)
            if e is None:
                cells.append("—")
            elif "error" in e:
                cells.append("n/a")
            else:
                cells.append(f"{e['ratio_to_forward']:.2f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\nForward pass and gradient, ours against Python PyTorch (torch.autograd.grad) on the same TorchScript file:\n")
    print("| model | batch | our forward ms | PyTorch forward ms | our gradient ms | PyTorch gradient ms | ours / PyTorch | peak MiB (gradient) |")
    print("|---|---|---|---|---|---|---|---|")
    for model, batch in columns:
        b = j["models"][model]["batches"][batch]
        g = b["methods"].get("gradient")
        if not g or "error" in g:
            continue
        py = b["pytorch"]
        print(f"| {model} | {batch} | {g['forward_ms']:.3f} | {py['forward_ms']:.3f} | {g['method_ms']:.3f} | "
              f"{py['gradient_ms']:.3f} | {g['ours_over_pytorch']:.2f} | {g['peak_rss_mib']:.0f} |")
    floors = [(model, batch, j["models"][model]["batches"][batch]) for model, batch in columns
              if "lrp_zplus_floor" in j["models"][model]["batches"][batch]]
    if floors:
        print("\nThe floor of exact LRP-z+ (and alpha-beta, composite): the forward pass, each layer's map with "
              "its positive weights, and their transposes on direct kernels, timed alone:\n")
        rules = ("lrp-zplus", "lrp-alpha-beta", "lrp-composite")
        print("| model | batch | forward ms | maps with W+ ms | their transposes ms | floor / forward | "
              + " | ".join(f"{r} / forward (/ floor's)" for r in rules) + " |")
        print("|---|---|---|---|---|---|" + "---|" * len(rules))
        for model, batch, b in floors:
            f = b["lrp_zplus_floor"]
            cells = []
            for r in rules:
                e = b["methods"].get(r, {})
                # The rule's ratio and, in brackets, that ratio over the floor's.
                cells.append(f"{e['ratio_to_forward']:.2f} ({e['ratio_to_forward'] / f['floor_ratio']:.3f})"
                             if "ratio_to_forward" in e else "—")
            print(f"| {model} | {batch} | {f['forward_ms']:.3f} | {f['positive_maps_ms']:.3f} | "
                  f"{f['transposed_direct_ms']:.3f} | {f['floor_ratio']:.2f} | " + " | ".join(cells) + " |")
    fit_path = os.path.join(folder, "fit.json")
    if os.path.exists(fit_path):
        print_fit(json.load(open(fit_path)))
    resnet_path = os.path.join(folder, "fit_resnet.json")
    if os.path.exists(resnet_path):
        print_fit(json.load(open(resnet_path)))


def print_fit(f):
    print(f"\nFitting on {f['model']}:\n")
    print("| artifact | examples | passes | seconds | peak MiB |")
    print("|---|---|---|---|---|")
    for r in f["scaling"]:
        print(f"| {'MIP-IN inverse' if r['method'] == 'mipin' else 'PatternNet patterns'} | {r['examples']} | "
              f"{r.get('passes') or '—'} | {r['seconds']:.1f} | {r['peak_rss_mib']:.0f} |")
    for key in ("mipin_peak_60k_over_10k", "pattern_peak_60k_over_10k"):
        if key in f:
            print(f"\n{key.replace('_', ' ')}: {f[key]:.3f}")
    if not f.get("solvers"):
        return
    if "solver_examples" in f:
        print(f"\nExact against iterative solver, MIP-IN on {f['solver_examples']:,} examples:")
    print("\n| solver | seconds | per-layer mse relative to the exact solver's (top layer first) |")
    print("|---|---|---|")
    for name, r in f["solvers"].items():
        rel = ", ".join(f"{v:+.1e}" for v in r["mse_relative_to_exact"])
        print(f"| {name.replace('_', ' ')} | {r['seconds']:.1f} | {rel} |")

if __name__ == "__main__":
    main()
