#!/usr/bin/env python3
"""One fit on 1, 2 and 4 processes of this machine (`mipin fit --processes
N`, loopback Gloo): wall time, the bytes and seconds of the sums added
across processes per pass, and how far each operator lands from the
one-process fit's (relative Frobenius). Then the fit's throughput, in
example-passes per second, on the models of the cost model: passes x
examples / throughput is a fit's time on one machine.

Example:
  PYTHONPATH=build/python python3 bench/distributed_fit.py --mipin build/mipin --model demo/cnn.pt \\
      --examples 60000 --out bench/results/distributed_fit.json
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

import mipin


def fit(tool, args, processes):
    start = time.perf_counter()
    done = subprocess.run([tool, "fit", *args, "--processes", str(processes), "--json"], capture_output=True,
                          text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"mipin fit {' '.join(args)} --processes {processes} failed:\n{done.stderr}")
    return json.loads(done.stdout), seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mipin", default="build/mipin")
    parser.add_argument("--model", default="demo/cnn.pt")
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--examples", type=int, default=60000)
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--out", default="bench/results/distributed_fit.json")
    a = parser.parse_args()
    model = torch.jit.load(a.model)
    runs, reference = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(p) for p in a.processes.split(",")]:
            out = os.path.join(tmp, f"{n}.mipin")
            # One thread per process past one process: the machine's cores are shared.
            threads = "0" if n == 1 else "1"
            result, seconds = fit(a.mipin, ["--model", a.model, "--data", a.data, "--examples", str(a.examples),
                                            "--threads", threads, "--out", out], n)
            operators = mipin.load_inverse(out, model).operators
            if reference is None:
                reference = operators
            worst = max(((operators[k].double() - reference[k].double()).norm() / reference[k].double().norm()).item()
                        for k in reference)
            runs.append({"processes": n, "threads_each": threads, "seconds": seconds,
                         "passes": result["passes"], "worst_operator_relative_difference": worst})
            print(f"{n} process(es): {seconds:7.1f} s, worst operator relative difference {worst:.2e}", flush=True)
            for p in result["passes"]:
                print(f"    pass {p['pass']}: {p['seconds']:6.1f} s, reduced {p['reduced_bytes'] / 1e6:8.2f} MB "
                      f"in {p['reduce_seconds']:.3f} s", flush=True)
    passes = len(runs[0]["passes"])
    report = {"model": a.model, "data": a.data, "examples": a.examples, "runs": runs,
              "example_passes_per_second_one_process": passes * a.examples / runs[0]["seconds"]}
    print(f"throughput on one process: {report['example_passes_per_second_one_process']:.0f} example-passes/s "
          f"({passes} passes)")
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
