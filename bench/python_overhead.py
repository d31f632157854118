"""The Python module's overhead: a Python call of a method over the C++ call
of the same method (timed in C++, in the same process and run), for the
gradient and MIP-IN at batch 64 on the demo CNN.

Usage: PYTHONPATH=build/python /usr/bin/python3 bench/python_overhead.py MODEL.pt [--repeats 60]
(bench/run.sh trains the demo CNN and runs it.)"""
import argparse
import statistics
import time

import torch

import mipin


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=60)
    parser.add_argument("--fit-examples", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    # As the tool and mipin_bench do at start-up (it affects both sides alike).
    mipin.reuse_freed_memory()
    model = mipin.Model(args.model)
    x, y, _ = mipin.load_data("fashion-mnist", "train", 0, args.fit_examples)
    inverse = mipin.fit_inverse(model, (x, y), progress=False)
    x, _, _ = mipin.load_data("fashion-mnist", "test", 0, args.batch)
    targets = model(x).argmax(1)
    print(f"demo CNN {args.model}, batch {args.batch}, {args.repeats} calls each, "
          f"{torch.get_num_threads()} threads; median seconds per call")
    print(f"{'method':<10} {'python':>10} {'c++':>10} {'python/c++':>11}")
    for name, method in (("gradient", mipin.Gradient(model)), ("mipin", mipin.MipIn(model, inverse))):
        for _ in range(3):  # warm-up: primitives, packed weights
            method.attribute(x, target=targets)
        python, cpp = [], []
        # Alternate the two so that the machine's drift touches both alike.
        for _ in range(args.repeats):
            start = time.perf_counter()
            method.attribute(x, target=targets)
            python.append(time.perf_counter() - start)
            cpp += mipin._core.cpp_attribute_seconds(method._core, model._core, x, targets, 1)
        p, c = statistics.median(python), statistics.median(cpp)
        print(f"{name:<10} {p:>10.5f} {c:>10.5f} {p / c:>11.3f}")


if __name__ == "__main__":
    main()
