#!/usr/bin/env python3
"""Fitting cost on a zoo model: wall time, passes over the data and peak
memory of `mipin fit` (MIP-IN and PatternNet patterns) at 1k, 10k and 60k
training examples, and
the exact solver against the iterative one (time, and the reconstruction loss
each reaches per layer, with the iterative solver at several iteration
counts). Each fit runs as its own process; peak memory is that process's
maximum resident set (wait4). Writes JSON and prints a table.

Examples:
  python3 bench/fit_bench.py --mipin build/mipin --model demo/cnn.pt --out bench/results/fit.json
  python3 bench/fit_bench.py --model demo/resnet.pt --methods mipin --sizes 10000,60000 --no-solvers \
      --out bench/results/fit_resnet.json
"""
import argparse
import json
import os
import sys
import tempfile
import time


def run_fit_measured(mipin, args):
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 2)
        out = os.open(args_out_path(), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(out, 1)
        os.execv(mipin, [mipin, "fit", *args, "--json"])
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        sys.exit(f"mipin fit {' '.join(args)} failed (status {status})")
    with open(args_out_path()) as f:
        result = json.load(f)
    return result, seconds, usage.ru_maxrss / 1024.0


_tmp = tempfile.mkdtemp(prefix="mipin-fit-bench-")


def args_out_path():
    return os.path.join(_tmp, "fit.json")


def write(results, path):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=2)
    os.replace(tmp, path)
    print(f"wrote {path}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mipin", default="build/mipin")
    p.add_argument("--model", default="demo/cnn.pt")
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--out", default="bench/results/fit.json")
    p.add_argument("--sizes", default="1000,10000,60000")
    p.add_argument("--solver-examples", type=int, default=10000)
    p.add_argument("--iterations", default="10,30,100")
    p.add_argument("--methods", default="mipin,pattern", help="what to fit: mipin, pattern or both")
    p.add_argument("--no-solvers", action="store_true", help="skip the exact against iterative comparison")
    a = p.parse_args()
    artifact = os.path.join(_tmp, "fitted")
    results = {"model": a.model, "data": a.data, "scaling": [], "solvers": {}, "solver_examples": a.solver_examples}

    methods = a.methods.split(",")
    print(f"{'method':8} {'examples':>9} {'seconds':>9} {'passes':>7} {'peak MiB':>9}")
    for method in methods:
        for n in [int(s) for s in a.sizes.split(",")]:
            j, sec, mib = run_fit_measured(a.mipin, ["--method", method, "--model", a.model, "--data", a.data,
                                                     "--examples", str(n), "--out", artifact])
            # Passes over the data: the fit's layers say which pass fitted them.
            # (A pattern fit's JSON gives only its count of layers: one pass.)
            layers = j.get("layers") if isinstance(j.get("layers"), list) else []
            passes = max([l["pass"] for l in layers if "pass" in l] or [None], key=lambda v: v or 0)
            results["scaling"].append({"method": method, "examples": n, "seconds": sec, "passes": passes,
                                       "peak_rss_mib": mib})
            print(f"{method:8} {n:9d} {sec:9.1f} {passes if passes else '-':>7} {mib:9.0f}", flush=True)
    for method in methods:
        rows = [r for r in results["scaling"] if r["method"] == method]
        by_n = {r["examples"]: r["peak_rss_mib"] for r in rows}
        if 10000 in by_n and 60000 in by_n:
            results[f"{method}_peak_60k_over_10k"] = by_n[60000] / by_n[10000]
            print(f"{method}: peak memory at 60k / at 10k = {by_n[60000] / by_n[10000]:.3f}")

    if a.no_solvers:
        write(results, a.out)
        return
    # Exact against iterative: the same layers, the same examples.
    def solver_run(extra):
        j, sec, mib = run_fit_measured(a.mipin, ["--model", a.model, "--data", a.data, "--examples",
                                                 str(a.solver_examples), "--out", artifact, *extra])
        return {"seconds": sec, "peak_rss_mib": mib,
                "layers": [{"index": l["index"], "layer": l["layer"], "solver": l["solver"], "mse": l["mse"],
                            "r2": l["r2"], "seconds": l["seconds"]} for l in j["layers"]]}

    results["solvers"]["exact"] = solver_run(["--solver", "exact"])
    for it in [int(s) for s in a.iterations.split(",")]:
        results["solvers"][f"iterative_{it}"] = solver_run(["--solver", "iterative", "--iterations", str(it)])
    exact = results["solvers"]["exact"]
    print(f"\nsolvers on {a.solver_examples} examples: total seconds, and per layer mse relative to the exact solver's")
    for name, r in results["solvers"].items():
        rel = [l["mse"] / e["mse"] - 1 for l, e in zip(r["layers"], exact["layers"])]
        r["mse_relative_to_exact"] = rel
        print(f"  {name:14} {r['seconds']:7.1f} s   " + "  ".join(f"{v:+.2e}" for v in rel))
    write(results, a.out)

if __name__ == "__main__":
    main()
