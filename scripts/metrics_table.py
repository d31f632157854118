#!/usr/bin/env python3
"""Prints the metrics.json of `mipin evaluate --out DIR` as a Markdown table:
one row per method, the headline number of every metric.

Example: python3 scripts/metrics_table.py demo/report/metrics.json
"""
import json
import sys


def get(m, *path):
    for key in path:
        if isinstance(key, int):
            if not isinstance(m, list) or not m:
                return None
            m = m[key]
        else:
            if not isinstance(m, dict) or key not in m:
                return None
            m = m[key]
    return m if isinstance(m, (int, float)) else None


COLUMNS = [
    ("completeness", ("completeness", "agreement"), "{:.3f}"),
    ("minimality", ("minimality", "accuracy"), "{:.3f}"),
    ("deletion", ("deletion", "area"), "{:.3f}"),
    ("insertion", ("insertion", "area"), "{:.3f}"),
    ("ROAD MoRF", ("road_most_relevant_first", "area"), "{:.3f}"),
    ("ROAD LeRF", ("road_least_relevant_first", "area"), "{:.3f}"),
    ("pointing game", ("localization", "pointing_game"), "{:.3f}"),
    ("mass in box", ("localization", "mass_in_box"), "{:.3f}"),
    ("ground truth", ("ground_truth", "cosine"), "{:.3f}"),
    ("SSIM top random", ("randomization", 0, "ssim"), "{:.3f}"),
    ("signed Spearman top random", ("randomization", 0, "spearman_signed"), "{:.3f}"),
    ("abs Spearman top random", ("randomization", 0, "spearman_abs"), "{:.3f}"),
    ("SSIM all random", ("randomization", -1, "ssim"), "{:.3f}"),
    ("signed Spearman all random", ("randomization", -1, "spearman_signed"), "{:.3f}"),
    ("abs Spearman all random", ("randomization", -1, "spearman_abs"), "{:.3f}"),
    ("input R^2", ("reconstruction", "input_r2"), "{:.3f}"),
]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    j = json.load(open(sys.argv[1]))
    methods = j["methods"]
    cols = [c for c in COLUMNS if any(get(m, *c[1]) is not None for m in methods.values())]
    # MIP-IN and its variants first, the floor last.
    order = sorted(methods, key=lambda n: (n.split(":")[0] != "mipin", n == "random", n != "mipin", n))
    print(f"{j['data']}, {j['examples']} {j.get('split', '')} examples, model accuracy {j['model_accuracy']:.4f}, "
          f"chance {j['chance']:.2f}")
    for key in ("deletion", "insertion", "road_most_relevant_first", "road_least_relevant_first"):
        for m in methods.values():
            if key in m:
                print(f"random pixel order: {key} area {m[key]['random_area']:.3f}")
                break
    for m in methods.values():
        if "localization" in m:
            print(f"box area fraction (pointing game by chance): {m['localization']['box_area_fraction']:.3f}")
            break
    print()
    print("| method | " + " | ".join(c[0] for c in cols) + " |")
    print("|---|" + "---|" * len(cols))
    for name in order:
        cells = []
        for _, path, fmt in cols:
            v = get(methods[name], *path)
            cells.append("—" if v is None else fmt.format(v))
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
