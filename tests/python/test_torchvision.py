"""A torchvision model straight from Python: no export, no file, the
caller's tensor memory read where it lies."""
import os

import pytest
import torch
import torchvision

import mipin


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return torchvision.models.resnet18().eval()


def autograd_gradient(module, x, targets):
    x = x.clone().requires_grad_(True)
    logits = module(x)
    logits[torch.arange(x.shape[0]), targets].sum().backward()
    return x.grad


def test_gradient_of_a_resnet18_module_equals_autograd_without_a_file(resnet, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(1)
    x = torch.rand(2, 3, 64, 64)
    t = torch.tensor([3, 917])
    a = mipin.method("gradient").attribute(resnet, x, target=t)
    expected = autograd_gradient(resnet, x, t)
    relative = ((a - expected).abs().max() / expected.abs().max()).item()
    assert relative <= 1e-5, relative
    assert list(tmp_path.iterdir()) == []
    # A module in training mode is traced as in eval mode, and left as it was.
    resnet.train()
    try:
        b = mipin.Gradient(resnet).attribute(x, target=t)
    finally:
        resnet.eval()
    assert resnet.training is False and torch.equal(a, b)


def test_targets_as_an_int_a_sequence_a_tensor_or_predicted(resnet):
    model = mipin.Model(resnet, input_shape=(3, 32, 32))
    x = torch.rand(3, 3, 32, 32)
    g = mipin.Gradient(model)
    predicted = model(x).argmax(1)
    assert torch.equal(g.attribute(x), g.attribute(x, target=predicted))
    assert torch.equal(g.attribute(x, target=[5, 5, 5]), g.attribute(x, target=5))
    assert torch.equal(g.attribute(x, target=(1, 2, 3)), g.attribute(x, target=torch.tensor([1, 2, 3])))


def test_the_core_reads_the_callers_tensor_not_a_copy(resnet):
    model = mipin.Model(resnet, input_shape=(3, 32, 32))
    x = torch.rand(2, 3, 32, 32)
    mipin.Gradient(model).attribute(x)
    assert mipin._core.last_input_address() == x.data_ptr()
    # Anything else is converted once: float64 becomes a new float32 tensor.
    y = x.double()
    a = mipin.Gradient(model).attribute(y)
    assert mipin._core.last_input_address() != y.data_ptr()
    assert torch.equal(a, mipin.Gradient(model).attribute(x))


def test_a_scripted_module_and_its_file_give_the_same_maps(models_dir):
    path = os.path.join(models_dir, "zoo_cnn.pt")
    scripted = torch.jit.load(path)
    x = torch.rand(2, 1, 28, 28)
    from_file = mipin.InputXGradient(mipin.Model(path)).attribute(x, target=2)
    from_module = mipin.InputXGradient(mipin.Model(scripted)).attribute(x, target=2)
    assert torch.equal(from_file, from_module)


def test_a_scripted_transformer_without_a_shape_is_read_at_its_first_input(models_dir):
    # torch.jit.load keeps no input shape, and a Linear applied per token is
    # told from a Linear on [N, F] only by the rank it sees: the module is read
    # once the first inputs say their shape.
    scripted = torch.jit.load(os.path.join(models_dir, "vit_small_grad.pt"))
    model = mipin.Model(scripted)
    assert "not read yet" in repr(model)
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    ours = mipin.Gradient(model).attribute(x, target=1)
    xg = x.double().requires_grad_(True)
    reference = scripted.double()
    (expected,) = torch.autograd.grad(reference(xg)[:, 1].sum(), xg)
    assert (ours.double() - expected).abs().max() <= 1e-4 * expected.abs().max()
    assert model.input_shape == (3, 32, 32)


def test_a_call_releases_the_gil_while_it_computes(resnet):
    import threading
    import time
    model = mipin.Model(resnet, input_shape=(3, 64, 64))
    x = torch.rand(4, 3, 64, 64)
    method = mipin.IntegratedGradients(model, steps=32)
    method.attribute(x)  # traced and warm
    done = threading.Event()

    def explain():
        method.attribute(x)
        done.set()

    worker = threading.Thread(target=explain)
    start = last = time.perf_counter()
    longest_gap = 0.0
    worker.start()
    while not done.is_set():
        # Pure Python: it stalls for the whole call if the call holds the GIL.
        now = time.perf_counter()
        longest_gap, last = max(longest_gap, now - last), now
    worker.join()
    took = time.perf_counter() - start
    assert took > 0.2, took
    assert longest_gap < took / 4, (longest_gap, took)
