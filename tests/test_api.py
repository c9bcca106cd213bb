"""The Python API a user reaches for (issue 17, item 9): the names the packages re-export, what
they do, the py.typed marker, and the README's list of them."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

import tinyengine
import tinynas

from .conftest import ROOT

HELLO = "tflm_hello_world_int8.tflite"


@pytest.mark.parametrize("package", [tinyengine, tinynas])
def test_every_exported_name_resolves(package):
    for name in package.__all__:
        assert getattr(package, name) is not None, name
    assert set(package.__all__) == {"__version__", *package._EXPORTS}
    with pytest.raises(AttributeError):
        package.no_such_name  # noqa: B018


def test_import_stays_cheap():
    """The names load on first use: `import tinyengine` does not pull in the compiler."""
    code = "import sys, tinyengine, tinynas; print(sorted(m for m in sys.modules " \
           "if m.startswith(('tinyengine.', 'tinynas.', 'torch'))))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


def test_compile_run_estimate_verify(shared_models, tmp_path):
    from tinyengine.frontend import load_model
    from tinyengine.inputs import random_inputs
    from tinyengine.reference import run_reference

    model = shared_models / HELLO
    report = tinyengine.compile_model(model, tmp_path / "p", prefix="hello", patch="off")
    assert (tmp_path / "p" / "hello_model.h").is_file()
    graph = load_model(model)
    x = random_inputs(graph, np.random.default_rng(0))
    out = tinyengine.HostModel(tmp_path / "p").invoke(x)
    np.testing.assert_array_equal(out[0], run_reference(graph, x)[0])
    cost = tinyengine.estimate_cost(model)
    assert (cost.peak_sram, cost.flash_bytes, cost.macs) == \
        (report["arena_bytes"], report["flash_bytes"], report["macs"])
    verdicts, _ = tinyengine.verify_model(model, n_random=2, use_tflm=False)
    assert all(v.exact for v in verdicts)
    report = tinyengine.compile_model(graph, tmp_path / "g")  # a Graph in memory
    assert report["macs"] == cost.macs
    with pytest.raises(tinyengine.TinyEngineError, match="--io"):
        tinyengine.compile_model(model, tmp_path / "q", io="int8")


def test_tinynas_cost():
    arch = tinynas.Arch.load(ROOT / "examples" / "mcunet" / "mcunet-in3.json")
    cost = tinynas.estimate_arch(arch)
    assert cost.peak_sram > 0 and cost.macs > 0


def test_py_typed_is_shipped():
    text = (ROOT / "pyproject.toml").read_text()
    for package in ("tinyengine", "tinynas"):
        assert (ROOT / package / "py.typed").is_file()
        assert re.search(rf'^{package} = \[.*"py.typed".*\]$', text, re.M), package


def test_readme_lists_the_api():
    """Every name the README's Python API section calls exists and is exported."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Python API", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    names = set(re.findall(r"\b(tinyengine|tinynas)\.([A-Za-z_]\w*)", section))
    assert len(names) >= 8, names
    for package, name in names:
        module = {"tinyengine": tinyengine, "tinynas": tinynas}[package]
        assert name in module.__all__, f"{package}.{name}"


def test_docstrings_name_methods_that_exist():
    """A docstring's `obj.method(` or `method(...)` of its own class is a method of the class."""
    for cls in (tinyengine.HostModel, tinynas.Arch, tinynas.SearchSpace):
        for called in re.findall(r"`(\w+)\(", cls.__doc__ or ""):
            assert hasattr(cls, called) or called == cls.__name__, f"{cls.__name__}.{called}"


def test_tinynas_search_and_deploy(tmp_path):
    """The stage-two entry points on a supernet trained for two epochs: what is checked is the
    path to a measured C project, not accuracy."""
    from tinynas.cli import main

    assert main(["train", "--width", "0.25", "--largest-epochs", "1", "--epochs", "1", "-q",
                 "-o", str(tmp_path / "sn")]) == 0
    supernet = tmp_path / "sn" / "supernet.pt"
    config = tinynas.PipelineConfig(population=4, generations=1, fitness_views=0,
                                    random_baseline=False, finetune_epochs=0, calib_images=16,
                                    scratch_epochs=0)
    budget = tinynas.Budget(4096, 16384)
    search, baseline = tinynas.search(supernet, budget, config)
    assert baseline is None and search.best.sram <= budget.sram
    deployment, tuning = tinynas.deploy(supernet, search.best.arch, tmp_path / "project", config,
                                        patch="off")
    assert (tmp_path / "project" / "report.json").is_file()
    assert deployment.sram_bytes <= budget.sram and 0 <= deployment.int8_accuracy <= 1
    assert tuning["kept"] == "inherited"
