"""The fast latency estimate (tinyengine/target/latency.py, for the search) against `bench` on
compiled models: within 5% per model, on a core and on a board preset with flash wait states.

The tables are measured by benchmarks/latency_table.py; a kernel change that moves the cycles
fails these tests until the tables are measured again.
"""

from __future__ import annotations

import shutil

import pytest

from tinyengine.codegen import compile_graph
from tinyengine.errors import TinyEngineError
from tinyengine.frontend import load_tflite
from tinyengine.target import bench
from tinyengine.target.latency import (
    estimate_latency,
    fit_lines,
    load_table,
)

from .conftest import MODELS, require

REGENERATE = "measure the tables again: .venv/bin/python benchmarks/latency_table.py"
CASES = ["tflm_person_detect.tflite", "tiny_kws_ref_model.tflite",
         "tflm_micro_speech_quantized.tflite"]


def test_fit_lines_recovers_a_line_and_stays_non_negative():
    assert fit_lines([(10, 25.0), (20, 45.0), (40, 85.0)]) == pytest.approx((2.0, 5.0))
    assert fit_lines([(10, 30.0)]) == pytest.approx((3.0, 0.0))  # one point: through 0
    a, b = fit_lines([(10, 10.0), (20, 30.0), (30, 50.0)])  # b would be -10: clipped
    assert b == 0.0 and a > 0


def test_tables_exist_for_the_preset_cores_and_unknown_cores_are_refused():
    for core in ("cortex-m4", "cortex-m7"):
        table = load_table(core)
        assert table["core"] == core and table["keys"] and table["records"]
    with pytest.raises(TinyEngineError, match="latency_table.py"):
        load_table("cortex-m0")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    require(MODELS.is_dir(), f"{MODELS} is absent (the shared models sit beside the project)")
    root = tmp_path_factory.mktemp("latency")
    out = {}
    for name in CASES:
        graph = load_tflite(MODELS / name)
        compile_graph(graph, root / name, prefix="m")
        out[name] = (graph, root / name)
    return out


@pytest.mark.parametrize("target", ["cortex-m4", "stm32f746"])
def test_estimate_within_5_percent_of_bench(compiled, target):
    require(shutil.which("qemu-system-arm") is not None
            and shutil.which("arm-none-eabi-gcc") is not None,
            "arm-none-eabi-gcc and qemu-system-arm are needed for bench")
    for name, (graph, project) in compiled.items():
        measured = bench(project, target)
        est = estimate_latency(graph, target)
        assert [k for _, k, _ in est.per_op] == [o.kernel for o in measured.per_op]
        assert not est.fallbacks, f"{name}: ops without a table key: {est.fallbacks}"
        assert measured.total_cycles is not None
        err = est.total_cycles / measured.total_cycles - 1
        assert abs(err) < 0.05, f"{name} on {target}: estimate off by {err:+.1%}; {REGENERATE}"
        if measured.ms is not None:
            assert est.ms == pytest.approx(measured.ms, rel=0.05)
