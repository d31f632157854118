"""Each kind of error is the Python exception a Python user expects, with
the command-line tool's message."""
import os

import pytest
import torch

import mipin


def test_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="model file not found"):
        mipin.Model(tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError, match="not found"):
        mipin.load_inverse(tmp_path / "missing.mipin", mipin.Model(os.path.join(os.environ["MIPIN_TEST_MODELS_DIR"], "zoo_mlp.pt")))


def test_an_op_without_a_layer_runs_and_rule_based_methods_name_it(models_dir):
    # An LSTM is in no group of ops: LRP has no rule for it and says so.
    model = mipin.Model(os.path.join(models_dir, "lstm.pt"))
    assert mipin.Gradient(model).fallback_nodes() == []
    nodes = mipin.LRPEpsilon(model).fallback_nodes()
    assert len(nodes) == 1 and "aten::lstm" in nodes[0][1]
    # mish is an activation: LRP passes its relevance as for any other.
    assert mipin.LRPEpsilon(mipin.Model(os.path.join(models_dir, "mish_mlp.pt"))).fallback_nodes() == []

    class Mish(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.mish(x).flatten(1)

    x = torch.rand(2, 4, requires_grad=True)
    ours = mipin.Gradient(Mish()).attribute(x.detach(), target=1)
    torch.nn.functional.mish(x)[:, 1].sum().backward()
    assert torch.allclose(ours, x.grad, rtol=1e-5, atol=1e-7)


def test_control_flow_on_the_input_is_not_implemented_and_named():
    class Branching(torch.nn.Module):
        def forward(self, x):
            if bool(x.sum() > 0):
                return x * 2.0
            return x

    with pytest.raises(NotImplementedError, match="control flow"):
        mipin.Model(torch.jit.script(Branching()), input_shape=[4])


def test_a_target_out_of_range_is_an_index_error(models_dir):
    model = mipin.Model(os.path.join(models_dir, "zoo_cnn.pt"))
    x = torch.rand(2, 1, 28, 28)
    with pytest.raises(IndexError, match="out of range: the model has 10 classes"):
        mipin.Gradient(model).attribute(x, target=10)
    with pytest.raises(IndexError, match="out of range"):
        mipin.Gradient(model).attribute(x, target=[1, -1])
    with pytest.raises(IndexError, match="one target per example"):
        mipin.Gradient(model).attribute(x, target=[1, 2, 3])


def test_bad_values_are_value_errors(models_dir, tmp_path):
    model = mipin.Model(os.path.join(models_dir, "zoo_cnn.pt"))
    with pytest.raises(ValueError, match="option steps takes an integer from 1 to 1000000, found 0"):
        mipin.IntegratedGradients(model, steps=0)
    with pytest.raises(ValueError, match="input shape mismatch"):
        mipin.Gradient(model).attribute(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match="NaN"):
        mipin.Gradient(model).attribute(torch.full((1, 1, 28, 28), float("nan")))
    with pytest.raises(ValueError, match="infinite values"):
        mipin.Gradient(model).attribute(torch.full((1, 1, 28, 28), float("inf")))
    with pytest.raises(ValueError, match="needs an inverse"):
        mipin.MipIn(model)
    with pytest.raises(ValueError, match="unknown method 'bogus'"):
        mipin.method("bogus")
    # An inverse fitted for another model is refused.
    other = mipin.Model(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)), input_shape=(1, 28, 28))
    x, y, _ = mipin.load_data("fashion-mnist", "train", 0, 64)
    mipin.fit_inverse(other, (x, y), progress=False).save(tmp_path / "other.mipin")
    with pytest.raises(ValueError, match="fitted for"):
        mipin.load_inverse(tmp_path / "other.mipin", model)


def test_an_unknown_keyword_is_a_type_error(models_dir):
    with pytest.raises(TypeError, match="unexpected keyword argument 'step'.*steps"):
        mipin.IntegratedGradients(step=3)
