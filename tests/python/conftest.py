"""Shared set-up of the Python tests: the tool, the exported test models and
the demo CNN with its CLI-fitted inverse and patterns (made once by CTest's
python_demo_model fixture)."""
import os
import subprocess

import pytest
import torch

# The tool computes on every core unless told otherwise; Python's torch on
# the physical ones. Results equal the tool's bit for bit at the same count.
torch.set_num_threads(os.cpu_count())

CLI = os.environ.get("MIPIN_CLI", "mipin")
MODELS = os.environ.get("MIPIN_TEST_MODELS_DIR", "")
DEMO = os.environ.get("MIPIN_PYTHON_DEMO_DIR", "")


def run_cli(*args):
    """Runs the mipin tool; fails the test with its output when it fails."""
    result = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True)
    assert result.returncode == 0, f"mipin {' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="session")
def models_dir():
    assert MODELS and os.path.isdir(MODELS), "MIPIN_TEST_MODELS_DIR must name the exported test models"
    return MODELS


@pytest.fixture(scope="session")
def demo():
    """The demo CNN (briefly trained), its inverse and patterns, fitted by the CLI."""
    files = {k: os.path.join(DEMO, f) for k, f in
             {"model": "cnn.pt", "inverse": "cnn.mipin", "patterns": "cnn.patterns"}.items()}
    for path in files.values():
        assert os.path.exists(path), f"{path} is missing: run CTest's python_demo_model fixture"
    files["fit_examples"] = 300
    return files
