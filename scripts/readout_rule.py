#!/usr/bin/env python3
"""Applies the rule (docs/cli.md, "MIP-IN's readouts") for MIP-IN's default readout to the metrics.json
files of `mipin evaluate --methods all,mipin:readout=signal,mipin:readout=contrast,
mipin:readout=abs --metrics all` (one file per model: the default row and the
three variants give the four readouts).

Each readout is ranked among the four on every (model, number) pair the files
hold: ROAD most-relevant-first area (lower is better), ROAD
least-relevant-first area (higher), insertion area with the mean fill
(higher), the pointing game (higher; only where the data has boxes) and
|signed Spearman| after the top layer is re-initialised (nearer 0). Equal
values share their ranks' mean. The default is the best mean rank; a tie goes
to an additive readout, then to `signal`.

Example: python3 scripts/readout_rule.py cnn-eval/metrics.json resnet-eval/metrics.json
"""
import json
import sys

READOUTS = ("signal", "contrast", "abs", "times-input")
ADDITIVE = {"signal", "contrast", "times-input"}
NUMBERS = [
    ("ROAD MoRF", lambda m: m["road_most_relevant_first"]["area"], +1),
    ("ROAD LeRF", lambda m: m["road_least_relevant_first"]["area"], -1),
    ("insertion (mean fill)", lambda m: m["insertion"]["area"] if m["insertion"].get("fill") == "mean" else None, -1),
    ("pointing game", lambda m: m["localization"]["pointing_game"], -1),
    ("|signed Spearman| top random", lambda m: abs(m["randomization"][0]["spearman_signed"]), +1),
]


def readout_rows(methods):
    """The metrics of each readout, by the readout each mipin row ran with (rows
    without "options" predate it, when a bare "mipin" row was `signal`)."""
    rows = {}
    for name, metrics in methods.items():
        if name == "mipin" or name.startswith("mipin:"):
            readout = metrics.get("options", {}).get("readout")
            if readout is None:
                readout = name.split("readout=", 1)[1].split(":")[0] if "readout=" in name else "signal"
            rows.setdefault(readout, metrics)
    missing = [r for r in READOUTS if r not in rows]
    if missing:
        sys.exit("readout_rule.py: no rows for readouts " + ", ".join(missing))
    return rows


def key(mean, r):
    return (mean[r], r not in ADDITIVE, r != "signal")


def main(paths):
    if not paths:
        sys.exit(__doc__)
    ranks = {r: [] for r in READOUTS}
    for path in paths:
        with open(path) as f:
            rows = readout_rows(json.load(f)["methods"])
        for label, get, sign in NUMBERS:
            try:
                values = {r: get(rows[r]) for r in READOUTS}
            except (KeyError, IndexError, TypeError):
                values = None
            if values is None or any(v is None for v in values.values()):
                # The pointing game needs boxes; anything else missing is said.
                if label != "pointing game":
                    print(f"{path}: {label}: not in every readout's row, left out")
                continue
            order = sorted(READOUTS, key=lambda r: sign * values[r])
            for r in READOUTS:
                tied = [i + 1 for i, q in enumerate(order) if values[q] == values[r]]
                ranks[r].append(sum(tied) / len(tied))
            print(f"{path}: {label}: " + ", ".join(f"{r} {values[r]:.4f}" for r in order))
    mean = {r: sum(v) / len(v) for r, v in ranks.items()}
    for r in sorted(READOUTS, key=lambda r: key(mean, r)):
        print(f"{r:12s} mean rank {mean[r]:.3f} over {len(ranks[r])} numbers")
    print("default:", min(READOUTS, key=lambda r: key(mean, r)))


if __name__ == "__main__":
    main(sys.argv[1:])
