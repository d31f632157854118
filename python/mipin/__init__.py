"""mipin: faithful explanations of trained networks, from Python.

The same C++ core as the ``mipin`` command, on your ``torch.nn.Module`` and
``DataLoader``::

    import mipin, torch, torchvision
    model = mipin.Model(torchvision.models.resnet18().eval(), input_shape=(3, 224, 224))
    x = torch.rand(4, 3, 224, 224)
    maps = mipin.IntegratedGradients(model, steps=32).attribute(x, target="predicted")
    inv = mipin.fit_inverse(model, loader, examples=2000)        # MIP-IN's inverse
    mip = mipin.MipIn(model, inv).attribute(x, target=3)           # source signal times x
    signal = mipin.MipIn(model, inv, readout="signal").attribute(x, target=3)

Every method is a class (``mipin.Gradient``, ``mipin.LRPEpsilon``, ...) and
``mipin.method(name, **options)`` makes one by name; their keyword arguments
are the options each method declares (``mipin.methods()`` lists them).
Inputs: a contiguous float32 CPU tensor is read where it lies, without a
copy; any other tensor (another dtype, strides or device) is converted once
to that form. Results are float32 CPU tensors.
"""

import inspect as _inspect
import io as _io
import json as _json
import os as _os

import torch as _torch

from . import _core

__version__ = _core.__version__

__all__ = ["Model", "Method", "method", "methods", "fit_inverse", "load_inverse", "fit_patterns",
           "load_patterns", "evaluate", "visualize", "load_data", "reuse_freed_memory"]


def _as_input(x):
    """A float32 contiguous CPU tensor: x itself where it already is one."""
    if not isinstance(x, _torch.Tensor):
        raise TypeError(f"expected a torch.Tensor of inputs, found {type(x).__name__}")
    if x.dtype == _torch.float32 and x.device.type == "cpu" and x.is_contiguous():
        return x.detach()
    return x.detach().to("cpu", _torch.float32).contiguous()


class Model:
    """A network mipin can explain.

    ``m`` is a ``torch.nn.Module`` (traced in-process, in eval mode, from an
    example input of ``input_shape`` or, without one, from the first inputs it
    is given), a ``torch.jit.ScriptModule``, or the path of a TorchScript
    file. ``input_shape`` is one example's shape, e.g. ``(3, 224, 224)``.
    """

    def __init__(self, m, input_shape=None):
        self._module = None
        self._script = None
        self._core = None
        shape = list(input_shape) if input_shape is not None else None
        if isinstance(m, Model):
            self._core, self._module, self._script = m._core, m._module, m._script
        elif isinstance(m, (str, _os.PathLike)):
            self._core = _core.Model.load(_os.fspath(m), shape)
        elif isinstance(m, _torch.jit.ScriptModule):
            # Read once the input shape is known: the import maps ops by the
            # ranks they see (a Linear applied per token is not a Linear on
            # [N, F]), and a module saved from Python carries no shape.
            self._script = (_script_bytes(m), type(m).__name__)
            if shape is not None:
                self._core = _core.Model.from_bytes(*self._script, shape)
        elif isinstance(m, _torch.nn.Module):
            self._module = m
            if shape is not None:
                self._trace(_torch.zeros([1] + shape))
        else:
            raise TypeError("mipin.Model takes an nn.Module, a torch.jit.ScriptModule or a path, found "
                            f"{type(m).__name__}")

    def _trace(self, example):
        m = self._module
        modes = [(mod, mod.training) for mod in m.modules()]
        m.eval()
        try:
            with _torch.no_grad():
                traced = _torch.jit.trace(m, example[:1].clone())
        finally:
            for mod, training in modes:
                mod.training = training
        self._core = _core.Model.from_bytes(_script_bytes(traced), type(m).__name__,
                                            list(example.shape[1:]))

    def _ready(self, x=None):
        """The C++ model, traced from x where it has not been yet."""
        if self._core is None:
            if self._script is not None:
                shape = list(x.shape[1:]) if x is not None and x.dim() >= 2 else None
                self._core = _core.Model.from_bytes(*self._script, shape)
            elif x is None:
                raise ValueError("this nn.Module has not been traced yet: give mipin.Model an input_shape, "
                                 "or explain some inputs first")
            else:
                self._trace(x)
        elif x is not None and not self._core.input_shape and x.dim() >= 2:
            self._core.set_input_shape(list(x.shape[1:]))
        return self._core

    def __call__(self, x):
        """The logits of a batch of inputs."""
        x = _as_input(x)
        return self._ready(x).forward(x)

    @property
    def input_shape(self):
        return tuple(self._ready().input_shape)

    @property
    def num_classes(self):
        return self._ready().num_classes

    @property
    def layers(self):
        """The layers as mipin reads them (the indices `grad-cam --layer` takes)."""
        return list(self._ready().layers)

    def __repr__(self):
        if self._core is None:
            if self._script is not None:
                return f"mipin.Model({self._script[1]}, not read yet)"
            return f"mipin.Model({type(self._module).__name__}, not traced yet)"
        return f"mipin.Model('{self._core.name}', input_shape={tuple(self._core.input_shape)})"


def _script_bytes(script_module):
    buffer = _io.BytesIO()
    _torch.jit.save(script_module, buffer)
    return buffer.getvalue()


def _model(m, x=None):
    model = m if isinstance(m, Model) else Model(m)
    model._ready(x)
    return model


# ---- methods, from their declarations -----------------------------------------

_CATALOG = _json.loads(_core.methods_json())["methods"]
_DECLARED = {m["name"]: m for m in _CATALOG}
_WORDS = {"mipin": "MipIn", "lrp": "LRP", "deeplift": "DeepLift", "smoothgrad": "SmoothGrad",
          "patternnet": "PatternNet", "patternattribution": "PatternAttribution", "zplus": "ZPlus",
          "backprop": "Backprop", "x": "X"}


def _class_name(method_name):
    return "".join(_WORDS.get(w, w.capitalize()) for w in method_name.split("-"))


def _default(option):
    text = option["default"]
    if option["type"] == "flag":
        return False
    if text is None:
        return None
    if option["type"] == "integer":
        return int(text)
    if option["type"] == "real":
        return float(text)
    return text


def _option_parameters(options):
    return [_inspect.Parameter(o["name"], _inspect.Parameter.KEYWORD_ONLY, default=_default(o))
            for o in options]


def _option_lines(options):
    lines = []
    for o in options:
        accepts = "" if o["type"] == "flag" else f" ({o['accepts']}, default {_default(o)!r})"
        lines.append(f"    {o['name']}{accepts}: {o['help']}")
    return lines


def _check_keywords(what, given, options):
    valid = [o["name"] for o in options]
    unknown = [k for k in given if k not in valid]
    if unknown:
        raise TypeError(f"{what} got an unexpected keyword argument '{unknown[0]}'; valid: "
                        + (", ".join(valid) if valid else "none"))
    return {k: v for k, v in given.items() if v is not None}


def _reference(value):
    if isinstance(value, _torch.Tensor):
        return _as_input(value)
    return value


class Method:
    """An attribution method; ``attribute`` explains inputs.

    Made as ``mipin.<Class>(model, **options)`` (bound to a model) or
    ``mipin.method(name, **options)`` (the model given to ``attribute``).
    """

    name = None  # the registry's name, set on each method's class

    def __init__(self, model=None, fitted=None, **options):
        declared = _DECLARED[self.name]
        options = _check_keywords(f"{type(self).__name__}()", options, declared["options"])
        options = {k: _reference(v) for k, v in options.items()}
        inverse = patterns = None
        if declared["fitted"] == "inverse":
            inverse = _fitted_core(fitted, Inverse, "an inverse (mipin.fit_inverse or mipin.load_inverse)")
        elif declared["fitted"] == "patterns":
            patterns = _fitted_core(fitted, Patterns, "patterns (mipin.fit_patterns or mipin.load_patterns)")
        elif fitted is not None:
            raise TypeError(f"{type(self).__name__}() takes no fitted part; its options are keywords")
        self.options = options
        self._core = _core.Method(self.name, options, inverse, patterns)
        self._model = None if model is None else (model if isinstance(model, Model) else Model(model))

    def attribute(self, *args, target="predicted"):
        """Attributions of x for the target classes, a tensor of x's shape.

        ``attribute(x, target=...)`` on a method bound to a model, or
        ``attribute(model, x, target=...)``. ``target`` is ``"predicted"``
        (each example's predicted class), one class index for every example,
        or a sequence or tensor with one class per example.
        """
        if len(args) == 1 and self._model is not None:
            model, x = self._model, args[0]
        elif len(args) == 2:
            model, x = args
            if not isinstance(model, Model):
                model = self._cached_model(model)
        else:
            raise TypeError("attribute(x, target=...) on a method made with a model, or attribute(model, x, "
                            "target=...)")
        x = _as_input(x)
        core_model = model._ready(x)
        if isinstance(target, str):
            if target != "predicted":
                raise ValueError(f"target: expected 'predicted', a class index or one class per example, "
                                 f"found '{target}'")
            return self._core.attribute(core_model, x)
        if isinstance(target, bool):
            raise TypeError("target: expected 'predicted', a class index or one class per example, found a bool")
        if isinstance(target, int):
            return self._core.attribute(core_model, x, one=target)
        each = target if isinstance(target, _torch.Tensor) else _torch.as_tensor(list(target))
        if each.is_floating_point():
            raise TypeError("target: expected integer class indices, found " + str(each.dtype))
        if each.dim() == 0:
            return self._core.attribute(core_model, x, one=int(each))
        return self._core.attribute(core_model, x, each=each.to(_torch.int64))

    def fallback_nodes(self, model=None):
        """The model's nodes where this method has no rule of its own and takes
        the gradient's (autograd's vector-Jacobian product of the node) instead,
        as (index, layer) pairs; empty where every node has the method's rule.
        Ops mipin runs as TorchScript does (an LSTM, a layer norm) are such
        nodes for the rule-based methods; the gradient family has none."""
        if model is None:
            model = self._model
        elif not isinstance(model, Model):
            model = self._cached_model(model)
        if model is None:
            raise TypeError("fallback_nodes(model): this method was made without a model")
        return self._core.fallback_nodes(model._ready())

    def _cached_model(self, m):
        # The same nn.Module explained again is not traced again.
        cached = getattr(self, "_models", None)
        if cached is None:
            cached = self._models = {}
        key = id(m)
        if key not in cached or cached[key][0] is not m:
            cached[key] = (m, Model(m))
        return cached[key][1]

    def __repr__(self):
        options = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"mipin.{type(self).__name__}({options})"


def _fitted_core(fitted, kind, what):
    if fitted is None:
        raise ValueError(f"this method needs {what}")
    if not isinstance(fitted, kind):
        raise TypeError(f"expected {what}, found {type(fitted).__name__}")
    return fitted._core


def _method_class(declared):
    name = declared["name"]
    fitted = declared["fitted"]
    parameters = [_inspect.Parameter("self", _inspect.Parameter.POSITIONAL_OR_KEYWORD),
                  _inspect.Parameter("model", _inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)]
    if fitted:
        parameters.append(_inspect.Parameter(fitted, _inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None))
    parameters += _option_parameters(declared["options"])
    signature = _inspect.Signature(parameters)

    def __init__(self, *args, **kwargs):
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError as e:
            valid = [o["name"] for o in declared["options"]]
            raise TypeError(f"{type(self).__name__}(): {e}; its options: "
                            + (", ".join(valid) if valid else "none")) from None
        values = dict(bound.arguments)
        values.pop("self")
        model = values.pop("model", None)
        fitted_part = values.pop(fitted, None) if fitted else None
        Method.__init__(self, model, fitted_part, **values)

    __init__.__signature__ = signature
    needs = {"inverse": "\n\nNeeds an inverse: mipin.fit_inverse(model, data) or mipin.load_inverse(path, model).",
             "patterns": "\n\nNeeds patterns: mipin.fit_patterns(model, data) or mipin.load_patterns(path, model)."}
    doc = declared["summary"][0].upper() + declared["summary"][1:] + "." + needs.get(fitted, "")
    if declared["options"]:
        doc += "\n\nOptions:\n" + "\n".join(_option_lines(declared["options"]))
    traits = [t for t in ("output_in_input_units", "multiplies_by_input", "images_only") if declared[t]]
    if traits:
        doc += "\n\nIt is: " + ", ".join(traits) + "."
    cls = type(_class_name(name), (Method,), {
        "name": name, "__init__": __init__, "__doc__": doc, "__module__": __name__,
        "fitted": fitted, "images_only": declared["images_only"],
        "output_in_input_units": declared["output_in_input_units"],
        "multiplies_by_input": declared["multiplies_by_input"]})
    return cls


_CLASSES = {}
for _declared in _CATALOG:
    _cls = _method_class(_declared)
    _CLASSES[_declared["name"]] = _cls
    globals()[_cls.__name__] = _cls
    __all__.append(_cls.__name__)


def method(name, fitted=None, **options):
    """The method called ``name`` (as ``mipin methods`` lists it), not bound to
    a model: ``mipin.method("gradient").attribute(model, x, target=t)``.
    ``fitted`` is MIP-IN's inverse or PatternNet's patterns where it needs one."""
    if name not in _CLASSES:
        raise ValueError(f"unknown method '{name}'; expected one of " + ", ".join(sorted(_CLASSES)))
    return _CLASSES[name](None, fitted, **options) if _DECLARED[name]["fitted"] else _CLASSES[name](**options)


def methods():
    """Every method's declaration: name, summary, options and what it is."""
    return [dict(m) for m in _CATALOG]


# ---- fitting ----------------------------------------------------------------------

def _fit_options(kind):
    for m in _CATALOG:
        if m["fitted"] == kind:
            return m["fit_options"]
    return []


def _tensors(data, model, examples=None, labels_needed=False):
    """A data argument as the core takes it: a --data spec string, or (x, y)."""
    if isinstance(data, (str, _os.PathLike)):
        return _os.fspath(data)
    if isinstance(data, _torch.Tensor):
        x = data[:examples] if examples else data
        if labels_needed:
            raise ValueError("these data need labels: give (x, y) batches, not a tensor of inputs alone")
        return (_as_input(x), _torch.zeros(x.shape[0], dtype=_torch.int64))
    if isinstance(data, tuple) and len(data) == 2 and all(isinstance(t, _torch.Tensor) for t in data):
        x, y = data
        if examples:
            x, y = x[:examples], y[:examples]
        return (_as_input(x), y.to(_torch.int64))
    xs, ys, count = [], [], 0
    try:
        batches = iter(data)
    except TypeError:
        raise TypeError("data: expected a DataLoader or an iterable of (x, y) batches, a tensor, or a data set "
                        f"spec string, found {type(data).__name__}") from None
    for batch in batches:
        if isinstance(batch, _torch.Tensor):
            if labels_needed:
                raise ValueError("these data need labels: give (x, y) batches")
            x, y = batch, _torch.zeros(batch.shape[0], dtype=_torch.int64)
        else:
            x, y = batch[0], batch[1]
        xs.append(x.detach().to("cpu", _torch.float32))
        ys.append(_torch.as_tensor(y).to(_torch.int64))
        count += x.shape[0]
        if examples and count >= examples:
            break
    if not xs:
        raise ValueError("data: the iterable gave no batches")
    x, y = _torch.cat(xs), _torch.cat(ys)
    if examples:
        x, y = x[:examples], y[:examples]
    if model is not None:
        model._ready(x)
    return (x.contiguous(), y)


class _Fitted:
    """What a method fitted from data: ``save(path)``, the ``examples`` it saw."""

    def __init__(self, core):
        self._core = core

    def save(self, path):
        self._core.save(_os.fspath(path))

    @property
    def examples(self):
        return self._core.examples


class Inverse(_Fitted):
    """A fitted MIP-IN inverse: ``save(path)``, per-layer ``fits``, the
    ``options`` it was fitted with."""

    @property
    def fits(self):
        return self._core.fits

    @property
    def seconds(self):
        return self._core.seconds

    @property
    def options(self):
        return self._core.options

    @property
    def operators(self):
        """What was fitted, by node index: a Linear/Conv2d layer's operator in
        its weight's shape, an add's or BatchNorm's channel scales."""
        return self._core.operators

    def __repr__(self):
        return f"mipin.Inverse({len(self.fits)} fitted layers, {self.examples} examples)"


class Patterns(_Fitted):
    """Fitted PatternNet/PatternAttribution patterns: ``save(path)``."""

    @property
    def patterns(self):
        """By layer index: each Linear/Conv2d layer's pattern, in its weight's shape."""
        return self._core.patterns


_gloo_group = None


def _ordered_sum(values):
    """Adds a float64 tensor across the job's processes in place, in rank
    order ((x0 + x1) + x2 ...), every process receiving the same bytes: the
    tool's own reduction."""
    import torch.distributed as dist
    rank, world = dist.get_rank(), dist.get_world_size()
    if rank > 0:
        incoming = _torch.empty_like(values)
        dist.recv(incoming, src=rank - 1, group=_gloo_group)
        values.add_(incoming)
    if rank < world - 1:
        dist.send(values, dst=rank + 1, group=_gloo_group)
    dist.broadcast(values, src=world - 1, group=_gloo_group)


def _job():
    """This process's place in a torch.distributed job, as the core takes it:
    None alone, or (rank, world size, sum). Under torchrun (WORLD_SIZE set)
    an uninitialized default group is initialized on Gloo; a group on
    another backend gets a Gloo group beside it for the sums."""
    global _gloo_group
    try:
        import torch.distributed as dist
    except ImportError:
        return None
    if not dist.is_available():
        return None
    if not dist.is_initialized():
        if int(_os.environ.get("WORLD_SIZE", "1")) <= 1:
            return None
        dist.init_process_group("gloo")
    if dist.get_world_size() <= 1:
        return None
    if _gloo_group is None and dist.get_backend() != "gloo":
        _gloo_group = dist.new_group(backend="gloo")
    return (dist.get_rank(), dist.get_world_size(), _ordered_sum)


def _fit_signature(kind):
    parameters = [_inspect.Parameter("model", _inspect.Parameter.POSITIONAL_OR_KEYWORD),
                  _inspect.Parameter("data", _inspect.Parameter.POSITIONAL_OR_KEYWORD),
                  _inspect.Parameter("examples", _inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)]
    parameters += [p for p in _option_parameters(_fit_options(kind)) if p.name != "examples"]
    parameters.append(_inspect.Parameter("progress", _inspect.Parameter.KEYWORD_ONLY, default=True))
    return _inspect.Signature(parameters)


def fit_inverse(model, data, examples=None, progress=True, **options):
    """Fits MIP-IN's inverse of ``model`` on ``data``: a DataLoader or any
    iterable of (x, y) batches, a tensor of inputs, or a data set spec
    (``"fashion-mnist"``, ``"folder:DIR"``: its training split), on the first
    ``examples`` examples (all by default). Prints its progress unless
    ``progress=False``.

    In a script launched by torchrun (or with a torch.distributed group
    initialized), every process takes its share of the batches and the sums
    are added across processes: each returns the same inverse. Save it from
    rank 0."""
    options = _check_keywords("fit_inverse()", options, [o for o in _fit_options("inverse") if o["name"] != "examples"])
    model = _model(model)
    if examples:
        options["examples"] = int(examples)
    return Inverse(_core.fit_inverse(model._core, _tensors(data, model, examples), options, progress, _job()))


def fit_patterns(model, data, examples=None, progress=True, **options):
    """Fits PatternNet's patterns (for PatternNet and PatternAttribution), on
    data as fit_inverse takes them."""
    options = _check_keywords("fit_patterns()", options,
                              [o for o in _fit_options("patterns") if o["name"] != "examples"])
    model = _model(model)
    if examples:
        options["examples"] = int(examples)
    return Patterns(_core.fit_patterns(model._core, _tensors(data, model, examples), options, progress, _job()))


fit_inverse.__signature__ = _fit_signature("inverse")
fit_inverse.__doc__ += "\n\nOptions:\n" + "\n".join(_option_lines(_fit_options("inverse")))
fit_patterns.__signature__ = _fit_signature("patterns")


def load_inverse(path, model):
    """An inverse saved by ``Inverse.save`` or ``mipin fit``; refused unless it
    was fitted for ``model``."""
    core = _core.Inverse.load(_os.fspath(path))
    core.check_compatible(_model(model)._core)
    return Inverse(core)


def load_patterns(path, model):
    """Patterns saved by ``Patterns.save`` or ``mipin fit --method pattern``."""
    core = _core.Patterns.load(_os.fspath(path))
    core.check_compatible(_model(model)._core)
    return Patterns(core)


# ---- evaluation and pictures --------------------------------------------------------

def evaluate(model, data, methods=None, metrics=None, inverse=None, patterns=None, out=None, examples=1000,
             fit_data=None, randomization_examples=32, refit_examples=2000, progress=True, **options):
    """Every faithfulness metric of every method, as ``mipin evaluate`` computes
    them; returns the dict ``metrics.json`` holds, and with ``out`` writes
    ``out/metrics.json`` and ``out/report.html``.

    ``data``: the examples evaluated (a data set spec string: its test split;
    (x, y) tensors; a DataLoader). ``methods``: names (default: every method
    that can run with the inverse and patterns given). ``metrics``: names
    (default: completeness, minimality, reconstruction and additivity, as
    ``mipin evaluate``; ``"all"``: every metric but localization). ``fit_data``: the training data the
    randomization metric refits MIP-IN and patterns on (default: a spec's
    training split, or ``data``). ``options``: method options, each method
    taking those it declares.

    Under torchrun every process evaluates its share of the batches and the
    counts are added; rank 0 writes ``out`` and alone computes the
    randomization and ground-truth metrics, so its dict is the job's.
    """
    model = _model(model)
    arguments = _core.EvaluateArguments()
    arguments.methods = list(methods or [])
    arguments.metrics = [metrics] if isinstance(metrics, str) else list(metrics or [])
    arguments.set_options({k: _reference(v) for k, v in options.items()})
    arguments.inverse = inverse._core if inverse is not None else None
    arguments.patterns = patterns._core if patterns is not None else None
    arguments.examples = int(examples)
    arguments.randomization_examples = int(randomization_examples)
    arguments.refit_examples = int(refit_examples)
    arguments.progress = bool(progress)
    arguments.out = _os.fspath(out) if out is not None else ""
    test = _tensors(data, model, examples, labels_needed=True)
    if fit_data is not None:
        train = _tensors(fit_data, model)
    else:
        train = test
    return _json.loads(_core.evaluate(model._core, test, train, arguments, _job()))


def visualize(attribution, x, save=None, scale=None):
    """The heatmap (blue negative, white zero, red positive) and the overlay
    (the heatmap over the input where |attribution| is large; the input as it
    is where it is small) of one example, as numpy uint8 arrays [H, W, 3].
    ``save="prefix"`` also writes prefix_heatmap.png and prefix_overlay.png."""
    a, x = attribution.detach(), x.detach()
    if a.dim() in (2, 4) and a.shape[0] == 1:
        a, x = a[0], x[0]
    heatmap, overlay = _core.pictures(a.cpu(), x.cpu(), scale)
    if save is not None:
        prefix = _os.fspath(save)
        _core.write_png(prefix + "_heatmap.png", heatmap)
        _core.write_png(prefix + "_overlay.png", overlay)
    return heatmap.numpy(), overlay.numpy()


def reuse_freed_memory():
    """Makes glibc's malloc keep freed memory for reuse instead of returning
    every large block to the kernel, which otherwise page-faults each large
    activation in afresh on every call (as costly as a CNN's backward pass
    arithmetic). It affects the whole process: its resident memory then stays
    at its peak. The `mipin` tool does this at start-up."""
    _core.reuse_freed_memory()


def load_data(spec="fashion-mnist", split="test", start=0, stop=None):
    """Examples [start, stop) of a data set as mipin reads it (normalised):
    returns (x, y, class_names)."""
    x, y, names = _core.load_data(spec, split, int(start), stop)
    return x, y, list(names)
