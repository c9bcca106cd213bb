"""The stateful model of ../shared/models end to end: tflm_keyword_scrambled.tflite (TFLM's
keyword_scrambled: QUANTIZE int16 -> int8, [SVDF -> FULLY_CONNECTED] x 4, SVDF x 3,
FULLY_CONNECTED, SOFTMAX int8 -> int16, QUANTIZE int16 -> int32; seven SVDFs with int16 state).

The generated C, the reference session and TFLM (one interpreter kept across invocations) run the
same 20 random inputs as two streams of 10 successive invocations, the state carried within a
stream and reset between them, then the first stream again after a reset; every output of every
invocation is compared bit for bit. The arena plus the persistent state must not exceed TFLM's
head plus its variable bytes (MANIFEST.md, measured with the tflite-micro package).

The model is a scrambled test model: on any input its two logits saturate at -128 and the final
output is constant, so the streams are also run with every op's output made a graph output (and
written to a .tflite for TFLM): each layer, state included through the SVDF outputs, is compared
at every invocation.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tinyengine.ir import Graph, verify

MODEL = "tflm_keyword_scrambled.tflite"
STREAM = 10
N_INPUTS = 20


def manifest_figures(models: Path, name: str) -> dict[str, int]:
    """TFLM's head and variable bytes for `name` from MANIFEST.md's table of the 16-bit models
    (| file | inputs | ops | head B | tail B | total B | variable B |)."""
    for line in (models / "MANIFEST.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0] == name and re.fullmatch(r"\d+", cells[6]):
            return {"head": int(cells[3]), "variable": int(cells[6])}
    raise AssertionError(f"{name} has no head / variable figures in MANIFEST.md")


Invoke = Callable[[list[np.ndarray]], list[np.ndarray]]


def run_streams(engines: dict[str, tuple[Invoke, Callable[[], None]]],
                cases: list[list[np.ndarray]]) -> dict[str, list[list[np.ndarray]]]:
    """Feed `cases` in streams of STREAM invocations to every engine, resetting all of them
    between streams, then replay the first stream after a reset; returns each engine's outputs
    (len(cases) + STREAM invocations)."""
    order = list(range(len(cases))) + list(range(STREAM))
    outs: dict[str, list[list[np.ndarray]]] = {name: [] for name in engines}
    for step, k in enumerate(order):
        if step % STREAM == 0:
            for _, reset in engines.values():
                reset()
        for name, (invoke, _) in engines.items():
            outs[name].append([np.array(y, copy=True) for y in invoke(cases[k])])
    return outs


def assert_streams_agree(outs: dict[str, list[list[np.ndarray]]], first: str) -> None:
    want = outs[first]
    for name, got in outs.items():
        for step, (ys, ws) in enumerate(zip(got, want, strict=True)):
            for y, w in zip(ys, ws, strict=True):
                np.testing.assert_array_equal(
                    y.reshape(w.shape), w, err_msg=f"{name} vs {first}, invocation {step}")
    # The replay after reset() gives the first stream's outputs again.
    for k in range(STREAM):
        for y, w in zip(want[N_INPUTS + k], want[k], strict=True):
            np.testing.assert_array_equal(y, w, err_msg=f"replay after reset, invocation {k}")


def random_cases(graph: Graph, seed: int, n: int = N_INPUTS) -> list[list[np.ndarray]]:
    from tinyengine.inputs import random_inputs

    rng = np.random.default_rng(seed)
    return [random_inputs(graph, rng) for _ in range(n)]


def engines_for(graph: Graph, model: bytes, project: Path) -> dict[str, Any]:
    from tinyengine.codegen import compile_graph
    from tinyengine.reference import ReferenceSession
    from tinyengine.runtime import HostModel
    from tinyengine.tflm import TflmSession

    report = compile_graph(graph, project, prefix="kws")
    host, ref, oracle = HostModel(project), ReferenceSession(graph), TflmSession(model)
    return {"report": report,
            "engines": {"reference": (ref.invoke, ref.reset), "c": (host.invoke, host.reset),
                        "tflm": (oracle.invoke, oracle.reset)}}


def state_matters(graph: Graph, cases: list[list[np.ndarray]],
                  outs: list[list[np.ndarray]]) -> bool:
    """Some invocation of the first stream differs from a fresh start on the same input."""
    from tinyengine.reference import run_reference

    return any(any(not np.array_equal(a, b) for a, b in zip(run_reference(graph, cases[k]),
                                                            outs[k]))
               for k in range(1, STREAM))


# ---------------------------------------------------------------------------------------------
# The model, and the model with every layer exposed
# ---------------------------------------------------------------------------------------------

def load_model(models: Path) -> Graph:
    from tinyengine.frontend import load_tflite

    graph = load_tflite(models / MODEL)
    assert sum(op.kind == "SVDF" for op in graph.ops) == 7
    assert [t.dtype for t in graph.state()] == ["int16"] * 7
    return graph


def expose_layers(graph: Graph) -> Graph:
    """The graph with every op's output also a graph output."""
    outputs = list(graph.outputs) + [op.outputs[0] for op in graph.ops
                                     if op.outputs[0] not in graph.outputs]
    exposed = Graph(dict(graph.tensors), list(graph.ops), list(graph.inputs), outputs,
                    name=f"{graph.name}_layers")
    verify(exposed)
    return exposed


def test_keyword_scrambled_streams_bit_exact(tflm: Any, shared_models: Path,
                                              tmp_path: Path) -> None:
    graph = load_model(shared_models)
    run = engines_for(graph, (shared_models / MODEL).read_bytes(), tmp_path / "kws")
    outs = run_streams(run["engines"], random_cases(graph, 1313))
    assert_streams_agree(outs, "tflm")


def test_keyword_scrambled_every_layer_streams_bit_exact(tflm: Any, shared_models: Path,
                                                         tmp_path: Path) -> None:
    from tinyengine.frontend.tflite_writer import write_tflite

    graph = expose_layers(load_model(shared_models))
    run = engines_for(graph, write_tflite(graph), tmp_path / "layers")
    cases = random_cases(graph, 1314)
    outs = run_streams(run["engines"], cases)
    assert_streams_agree(outs, "tflm")
    assert state_matters(graph, cases, outs["reference"])
    # The SVDF layers reach more than their clamps on these inputs.
    for op in graph.ops:
        if op.kind == "SVDF":
            k = graph.outputs.index(op.outputs[0])
            values = {int(v) for step in outs["reference"] for v in step[k].ravel()}
            assert len(values) >= 3, (op.name, values)


def test_keyword_scrambled_memory_within_tflm(shared_models: Path, tmp_path: Path) -> None:
    from tinyengine.codegen import compile_graph

    graph = load_model(shared_models)
    tflm = manifest_figures(shared_models, MODEL)
    report = compile_graph(graph, tmp_path / "kws", prefix="kws")
    state = sum(t.nbytes for t in graph.state())
    assert state == tflm["variable"] == 10240
    assert report["persistent_bytes"] >= state
    assert report["arena_bytes"] + report["persistent_bytes"] <= tflm["head"] + tflm["variable"]
    assert all(o["scratch_bytes"] == 0 for o in report["ops"] if o["kind"] == "SVDF")


def test_keyword_scrambled_sanitized_stream(shared_models: Path, tmp_path: Path) -> None:
    """The generated demo under ASan/UBSan, fed the 20 inputs as one stream, every layer
    exposed so that the outputs are not the model's constant logits."""
    from tinyengine.codegen import compile_graph

    from .sanitized import check_sanitized_demo

    graph = expose_layers(load_model(shared_models))
    compile_graph(graph, tmp_path / "kws", prefix="kws")
    check_sanitized_demo(tmp_path / "kws", "kws", graph, random_cases(graph, 1315))
