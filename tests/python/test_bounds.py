"""Options that scale a method's time or memory beyond reason are refused
before anything is allocated, from the tool and from Python alike: the
message names the bound, and the process stays small (< 1 GB)."""
import os
import subprocess
import sys

import pytest

from conftest import CLI

GIB = 1024 ** 3

# (method and its options as the tool takes them, as Python takes them, what the message says)
HOSTILE = [
    (["--method", "integrated-gradients", "--steps", "1000000000000"],
     "IntegratedGradients(model, steps=10**12)", "option steps takes an integer from 1 to 1000000"),
    (["--method", "smoothgrad", "--samples", "1000000000000"],
     "SmoothGrad(model, samples=10**12)", "option samples takes an integer from 1 to 1000000"),
    (["--method", "integrated-gradients", "--internal-batch", "1000000000"],
     "IntegratedGradients(model, internal_batch=10**9)", "option internal_batch is 1000000000 inputs per pass"),
    (["--method", "smoothgrad", "--internal-batch", "1000000000"],
     "SmoothGrad(model, internal_batch=10**9)", "option internal_batch is 1000000000 inputs per pass"),
    (["--method", "occlusion", "--patch", "40"],
     "Occlusion(model, patch=40)", "option patch is 40 pixels, larger than the input (28x28): at most 28"),
    (["--method", "integrated-gradients", "--integration", "gauss-legendre", "--steps", "5000"],
     "IntegratedGradients(model, integration='gauss-legendre', steps=5000)", "takes at most 1024 nodes"),
]


def run_measured(command, **kwargs):
    """Runs `command`; returns its exit status, output and peak resident bytes."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, output, usage.ru_maxrss * 1024


@pytest.mark.parametrize("cli, python, message", HOSTILE, ids=[h[1].split("(")[0] + str(i) for i, h in enumerate(HOSTILE)])
def test_hostile_options_are_refused_from_the_tool(models_dir, tmp_path, cli, python, message):
    code, output, peak = run_measured([CLI, "explain", "--model", os.path.join(models_dir, "zoo_cnn.pt"),
                                       "--data", "fashion-mnist", "--index", "0:2", *cli, "--out", str(tmp_path / "maps")])
    assert code != 0, output
    assert message in output, output
    assert peak < GIB, f"peak {peak / GIB:.2f} GiB"
    assert not (tmp_path / "maps").exists()


@pytest.mark.parametrize("cli, python, message", HOSTILE, ids=[h[1].split("(")[0] + str(i) for i, h in enumerate(HOSTILE)])
def test_hostile_options_are_refused_from_python(models_dir, cli, python, message):
    script = (
        "import mipin, torch\n"
        f"model = mipin.Model({os.path.join(models_dir, 'zoo_cnn.pt')!r})\n"
        "x = torch.rand(2, 1, 28, 28)\n"
        "try:\n"
        f"    mipin.{python}.attribute(x, target='predicted')\n"
        "except ValueError as e:\n"
        "    print(e)\n"
        "    raise SystemExit(3)\n"
    )
    code, output, peak = run_measured([sys.executable, "-c", script])
    assert code == 3, output
    assert message in output, output
    assert peak < GIB, f"peak {peak / GIB:.2f} GiB"
