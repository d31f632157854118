"""The module itself: it imports alone, and every method's class, keywords
and docstring come from the method's declaration."""
import inspect
import json
import subprocess
import sys

import pytest

import mipin
from conftest import run_cli


def test_version_and_import_load_nothing_besides_torch():
    code = ("import sys, torch; before = set(sys.modules); import mipin; "
            "print(mipin.__version__); print(sorted(set(sys.modules) - before))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == mipin.__version__ and out[0].count(".") == 2
    added = [m for m in eval(out[1]) if not m.startswith("mipin")]
    assert added == [], f"import mipin loaded more than torch: {added}"


def test_every_declared_method_is_a_class_with_its_options_as_keywords():
    declared = json.loads(run_cli("methods", "--json"))["methods"]
    assert [m["name"] for m in mipin.methods()] == [m["name"] for m in declared]
    for m in declared:
        cls = next(c for c in vars(mipin).values()
                   if isinstance(c, type) and issubclass(c, mipin.Method) and c.name == m["name"])
        parameters = inspect.signature(cls).parameters
        keywords = [p for p in parameters.values() if p.kind == inspect.Parameter.KEYWORD_ONLY]
        assert [p.name for p in keywords] == [o["name"] for o in m["options"]], m["name"]
        for p, o in zip(keywords, m["options"]):
            assert o["help"] in cls.__doc__
            if o["type"] == "integer" and o["default"] is not None:
                assert p.default == int(o["default"])
            if o["type"] == "choice":
                assert p.default == o["choices"][0]
        assert cls.multiplies_by_input == m["multiplies_by_input"]
        assert cls.output_in_input_units == m["output_in_input_units"]


def test_captum_style_names():
    assert mipin.IntegratedGradients.name == "integrated-gradients"
    assert mipin.MipIn.name == "mipin" and mipin.MipIn.fitted == "inverse"
    assert mipin.LRPEpsilon.name == "lrp-epsilon"
    assert "inverse" in inspect.signature(mipin.MipIn).parameters


def test_fit_keywords_are_the_fit_declaration():
    declared = next(m for m in json.loads(run_cli("methods", "--json"))["methods"] if m["name"] == "mipin")
    parameters = inspect.signature(mipin.fit_inverse).parameters
    for o in declared["fit_options"]:
        assert o["name"] in parameters, o["name"]
    help_text = run_cli("fit", "--help")
    for o in declared["fit_options"]:
        assert o["flag"] in help_text


def test_unknown_keyword_is_a_type_error_listing_the_valid_ones():
    with pytest.raises(TypeError, match="steps.*integration|baseline, steps, integration, internal_batch"):
        mipin.IntegratedGradients(stepz=3)
    with pytest.raises(TypeError, match="valid: .*batch_size.*solver"):
        mipin.fit_inverse(None, None, solverr="exact")
    with pytest.raises(TypeError, match="abs"):
        mipin.method("gradient", bogus=True)
