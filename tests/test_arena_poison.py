"""Arena poisoning (issue 17, item 3): built with -DTE_ARENA_POISON under AddressSanitizer, the
generated model poisons every arena byte outside the running op's tensors and scratch, so an
out-of-bounds access that stays inside the one static arena is reported.

(a) every shared model runs clean with poisoning on and matches the reference bit for bit (a
false positive here would mean a kernel touches bytes the plan did not give it);
(b) a kernel broken on purpose to read one byte past its input is NOT reported by plain ASan
(the byte is another live tensor of the same arena) and IS reported with poisoning."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from tinyengine.codegen import compile_graph
from tinyengine.frontend import load_tflite
from tinyengine.inputs import random_inputs
from tinyengine.ir import Graph, Op, QuantParams, Tensor
from tinyengine.reference import run_reference

from .conftest import MODEL_FILES, MODELS, require
from .poisoned import build_demo, check_poisoned_demo, run_demo


@pytest.fixture(autouse=True)
def _toolchain():
    require(shutil.which("make") is not None and shutil.which("cc") is not None,
            "make and cc are needed")


@pytest.mark.parametrize("patch", ["off", "auto"])
@pytest.mark.parametrize("name", MODEL_FILES)
def test_shared_models_run_clean_with_poisoning(name, patch, shared_models, tmp_path):
    graph = load_tflite(MODELS / name)
    project = tmp_path / "p"
    compile_graph(graph, project, prefix="m", patch=patch)
    rng = np.random.default_rng(11)
    check_poisoned_demo(project, "m", graph, [random_inputs(graph, rng) for _ in range(2)])


@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True])
def test_mobilenet_v2_patched_runs_clean_with_poisoning(shared_models, tmp_path, stream):
    """The PyTorch MobileNetV2: patch stages (SLICE windows, per-patch ops, UPDATE_SLICE),
    in-place ops and views; with a streamed input, windows are read from the caller's buffer."""
    graph = load_tflite(MODELS / "tflm_mobilenet_v2_pytorch.tflite")
    project = tmp_path / "p"
    report = compile_graph(graph, project, prefix="mbv2", patch="auto", stream_input=stream)
    assert report["patches"] is not None
    rng = np.random.default_rng(2)
    check_poisoned_demo(project, "mbv2", graph, [random_inputs(graph, rng)])


def _two_reshapes() -> Graph:
    """x0 -> RESHAPE -> y0 and x1 -> RESHAPE -> y1, 32 bytes each. With the linear planner and
    no in-place execution the arena is x0 | x1 | y0 | y1: the byte after x0 is x1, a live
    tensor that op 0 does not own."""
    q = QuantParams(np.array([0.05], np.float32), np.array([3], np.int64))
    tensors = {n: Tensor(n, (1, 32) if n[0] == "x" else (1, 4, 8), "int8", q)
               for n in ("x0", "x1", "y0", "y1")}
    ops = [Op(f"reshape{i}", "RESHAPE", [f"x{i}"], [f"y{i}"])
           for i in (0, 1)]
    return Graph(tensors, ops, ["x0", "x1"], ["y0", "y1"], "two_reshapes")


def test_read_past_input_is_caught_only_with_poisoning(tmp_path):
    graph = _two_reshapes()
    project = tmp_path / "p"
    report = compile_graph(graph, project, prefix="m", planner="linear", inplace=False,
                           patch="off")
    offsets = {b["name"]: b["offset"] for b in report["memory_plan"]["buffers"]}
    assert offsets["x1"] == offsets["x0"] + 32 < report["arena_bytes"]
    kernel = project / "kernels" / "te_reshape.c"
    source = kernel.read_text()
    bug = "if (input != output) {"
    assert bug in source
    # The bug: one byte past the input is read (volatile, so no optimiser drops it).
    kernel.write_text(source.replace(
        bug, "{ volatile int8_t past = ((const int8_t *)input)[p->size]; (void)past; }\n    "
        + bug))
    cases = [random_inputs(graph, np.random.default_rng(0))]

    build_demo(project, poison=False)
    run, _ = run_demo(project, "m", cases)
    assert run.returncode == 0 and "AddressSanitizer" not in run.stderr, run.stderr[-4000:]

    build_demo(project, poison=True)
    run, _ = run_demo(project, "m", cases)
    assert run.returncode != 0
    assert "AddressSanitizer: use-after-poison" in run.stderr, run.stderr[-4000:]
    assert "te_reshape_s8" in run.stderr


def test_poisoning_is_off_in_normal_builds(tmp_path):
    """The define alone (no ASan) builds and runs as before: the tables are not compiled."""
    graph = load_tflite(MODELS / "tflm_hello_world_int8.tflite")
    project = tmp_path / "p"
    compile_graph(graph, project, prefix="m")
    subprocess.run(["make", "-s", "-C", str(project),
                    "CFLAGS=-std=c99 -O2 -Wall -Wextra -Werror -DTE_ARENA_POISON"],
                   check=True, capture_output=True)
    symbols = subprocess.run(["nm", str(project / "m_model.o")], check=True,
                             capture_output=True, text=True).stdout
    assert "asan" not in symbols and "live_ranges" not in symbols
    x = random_inputs(graph, np.random.default_rng(1))
    run, got = run_demo(project, "m", [x])
    assert run.returncode == 0 and got == b"".join(y.tobytes() for y in run_reference(graph, x))
