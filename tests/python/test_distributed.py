"""A Python script launched by torchrun fits across its processes what the
tool fits alone: mipin.fit_inverse, fit_patterns and evaluate add their sums
over the job's Gloo group."""
import json
import os
import socket
import subprocess
import sys

import torch

import mipin
from conftest import CLI, run_cli

SCRIPT = """
import json, sys, torch, torch.distributed as dist, mipin
model = torch.jit.load(sys.argv[1])
inverse = mipin.fit_inverse(model, "fashion-mnist", examples=512, batch_size=64, progress=False)
patterns = mipin.fit_patterns(model, "fashion-mnist", examples=512, batch_size=64, progress=False)
metrics = mipin.evaluate(model, "fashion-mnist", methods=["mipin"], inverse=inverse, examples=200,
                         metrics=["completeness", "minimality", "reconstruction"], progress=False)
if dist.get_rank() == 0:
    inverse.save(sys.argv[2] + "/torchrun.mipin")
    patterns.save(sys.argv[2] + "/torchrun.patterns")
    json.dump(metrics, open(sys.argv[2] + "/torchrun.json", "w"))
# One write: torchrun's children share the pipe unbuffered, and print's
# pieces from two ranks interleave ("rankrank 0 of 2 done\\n 1 of 2 done").
sys.stdout.write(f"rank {dist.get_rank()} of {dist.get_world_size()} done\\n")
sys.stdout.flush()
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def relative(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def test_torchrun_script_fits_what_the_tool_fits(models_dir, tmp_path):
    model = os.path.join(models_dir, "zoo_cnn.pt")
    script = tmp_path / "fit.py"
    script.write_text(SCRIPT)
    # Debian's torchrun (1.13 on Python 3.11) needs its output settings given.
    launched = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-r", "2",
                               "-t", "2", "--master_port", str(free_port()), str(script), model, str(tmp_path)],
                              capture_output=True, text=True, timeout=600)
    assert launched.returncode == 0, launched.stdout + launched.stderr
    assert "rank 1 of 2 done" in launched.stdout + launched.stderr

    # The tool alone, on one thread as torchrun's workers are.
    flags = ["--model", model, "--examples", "512", "--batch-size", "64", "--threads", "1"]
    run_cli("fit", *flags, "--out", tmp_path / "cli.mipin")
    run_cli("fit", "--method", "pattern", *flags, "--out", tmp_path / "cli.patterns")
    scripted = torch.jit.load(model)
    ours = mipin.load_inverse(tmp_path / "torchrun.mipin", scripted).operators
    theirs = mipin.load_inverse(tmp_path / "cli.mipin", scripted).operators
    assert ours.keys() == theirs.keys()
    for node in theirs:
        assert relative(ours[node], theirs[node]) <= 1e-6, node

    ours = mipin.load_patterns(tmp_path / "torchrun.patterns", scripted).patterns
    theirs = mipin.load_patterns(tmp_path / "cli.patterns", scripted).patterns
    assert ours.keys() == theirs.keys() and len(theirs) == 4
    for layer in theirs:
        assert relative(ours[layer], theirs[layer]) <= 1e-6, layer

    tool = json.loads(run_cli("evaluate", "--json", "--model", model, "--inverse", tmp_path / "cli.mipin",
                              "--methods", "mipin", "--examples", "200", "--threads", "1",
                              "--metrics", "completeness,minimality,reconstruction"))
    script_metrics = json.loads((tmp_path / "torchrun.json").read_text())
    ours, theirs = script_metrics["methods"]["mipin"], tool["methods"]["mipin"]
    for metric in ("completeness", "minimality"):
        for key, value in theirs[metric].items():
            assert abs(ours[metric][key] - value) <= 1e-9, (metric, key)
    for a, b in zip(ours["reconstruction"]["layers"], theirs["reconstruction"]["layers"]):
        assert abs(a["r2"] - b["r2"]) <= 1e-6 * max(1.0, abs(b["r2"]))
