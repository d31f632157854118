"""From Python, the same results as the command-line tool, bit for bit, on
the demo CNN: every method, the fit from a DataLoader, the evaluation."""
import json
import os

import numpy as np
import pytest
import torch

import mipin
from conftest import run_cli

METHODS = [m["name"] for m in mipin.methods()]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    x, _, _ = mipin.load_data("fashion-mnist", "test", 0, 6)
    path = tmp_path_factory.mktemp("inputs") / "x.npy"
    np.save(path, x.numpy())
    return x, path


@pytest.mark.parametrize("name", METHODS)
def test_every_method_equals_the_cli(name, demo, inputs, tmp_path):
    x, path = inputs
    run_cli("explain", "--model", demo["model"], "--method", name, "--input", path, "--inverse", demo["inverse"],
            "--patterns", demo["patterns"], "--out", tmp_path, "--json")
    from_cli = torch.stack([torch.from_numpy(np.load(tmp_path / f"x_{i}.npy")) for i in range(x.shape[0])])
    fitted = {"inverse": lambda: mipin.load_inverse(demo["inverse"], demo["model"]),
              "patterns": lambda: mipin.load_patterns(demo["patterns"], demo["model"])}
    kind = next(m["fitted"] for m in mipin.methods() if m["name"] == name)
    method = mipin.method(name, fitted[kind]()) if kind else mipin.method(name)
    from_python = method.attribute(mipin.Model(demo["model"]), x, target="predicted")
    assert from_python.dtype == torch.float32 and from_python.shape == x.shape
    assert torch.equal(from_python, from_cli), f"{name}: largest difference {(from_python - from_cli).abs().max()}"


def test_dataloader_fit_equals_the_cli_fit(demo):
    n = demo["fit_examples"]
    x, y, _ = mipin.load_data("fashion-mnist", "train", 0, 1000)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=64)
    model = mipin.Model(demo["model"])
    fitted = mipin.fit_inverse(model, loader, examples=n, progress=False)
    from_cli = mipin.load_inverse(demo["inverse"], model)
    assert fitted.examples == from_cli.examples == n
    assert [f["r2"] for f in fitted.fits] == [f["r2"] for f in from_cli.fits]
    test_x, _, _ = mipin.load_data("fashion-mnist", "test", 0, 8)
    a = mipin.MipIn(model, fitted).attribute(test_x, target="predicted")
    b = mipin.MipIn(model, from_cli).attribute(test_x, target="predicted")
    assert torch.equal(a, b)


def test_saved_inverse_explains_as_the_fitted_one(demo, tmp_path):
    model = mipin.Model(demo["model"])
    x, y, _ = mipin.load_data("fashion-mnist", "train", 0, 200)
    fitted = mipin.fit_inverse(model, (x, y), progress=False, alpha=1e-2)
    assert fitted.options["alpha"] == 1e-2
    fitted.save(tmp_path / "cnn.mipin")
    loaded = mipin.load_inverse(tmp_path / "cnn.mipin", model)
    test_x, _, _ = mipin.load_data("fashion-mnist", "test", 0, 4)
    assert torch.equal(mipin.MipIn(model, fitted).attribute(test_x), mipin.MipIn(model, loaded).attribute(test_x))


def test_evaluate_equals_the_cli_and_writes_the_report(demo, tmp_path):
    common = dict(methods=["mipin", "gradient", "random"], metrics=["completeness", "minimality"], examples=40)
    run_cli("evaluate", "--model", demo["model"], "--inverse", demo["inverse"], "--methods", "mipin,gradient,random",
            "--metrics", "completeness,minimality", "--examples", 40, "--out", tmp_path / "cli", "--json")
    from_cli = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    model = mipin.Model(demo["model"])
    result = mipin.evaluate(model, "fashion-mnist", inverse=mipin.load_inverse(demo["inverse"], model),
                            out=tmp_path / "py", progress=False, **common)
    assert (tmp_path / "py" / "report.html").stat().st_size > 10000
    assert json.loads((tmp_path / "py" / "metrics.json").read_text()) == result
    for name in common["methods"]:
        for metric in common["metrics"]:
            assert result["methods"][name][metric] == from_cli["methods"][name][metric], (name, metric)
    assert list(result["methods"]) == list(from_cli["methods"])
