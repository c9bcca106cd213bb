"""The .tflite writer and the TFLM oracle: written models load and run in TFLM, the reader reads
back what the writer wrote, and every op's numpy reference equals TFLM bit for bit on seeded random
graphs.

TFLM comes from the optional `tflite-micro` package. Without it these tests skip, except under
CI=true, where a missing oracle is a failure (conftest's `tflm` fixture).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tinyengine.errors import TinyEngineError, UnsupportedError
from tinyengine.frontend import load_tflite, parse_tflite
from tinyengine.frontend.tflite_writer import write_tflite
from tinyengine.inputs import random_inputs
from tinyengine.ir import Graph, Op, QuantParams, Tensor
from tinyengine.ops import REGISTRY
from tinyengine.reference import run_reference
from tinyengine.tflm import run_tflm, tflm_arena

from .conftest import MODEL_FILES
from .random_graphs import ALL_KINDS, random_graph, random_input


@pytest.fixture(autouse=True)
def _needs_tflm(tflm: object) -> None:
    """Every test here needs the oracle: skip without it locally, fail under CI=true."""


# Kinds with an op definition (so a reference). The FOCUS tests use every kind regardless, so a
# missing definition fails there (verify names the kind) rather than shrinking coverage silently.
KINDS = tuple(k for k in ALL_KINDS if k in REGISTRY)

# Graphs that isolate one op kind (plus what it needs around it), so a mismatch names its op.
FOCUS = {
    "CONV_2D": ("CONV_2D",),
    "DEPTHWISE_CONV_2D": ("DEPTHWISE_CONV_2D",),
    "AVERAGE_POOL_2D": ("AVERAGE_POOL_2D",),
    "MAX_POOL_2D": ("MAX_POOL_2D",),
    "ADD": ("ADD",),
    "PAD": ("PAD",),
    "QUANTIZE": ("QUANTIZE",),
    "FULLY_CONNECTED": ("FULLY_CONNECTED",),
    "MEAN": ("MAX_POOL_2D", "MEAN"),
    "RESHAPE": ("MAX_POOL_2D", "RESHAPE"),
    "SOFTMAX": ("FULLY_CONNECTED", "SOFTMAX"),
    "DEQUANTIZE": ("MAX_POOL_2D", "DEQUANTIZE"),
}

# TFLM's arena for the shared models, from shared/models/MANIFEST.md: (head, tail, total) bytes.
MANIFEST_ARENA = {
    "tflm_person_detect.tflite": (55_296, 29_968, 85_264),
    "tiny_kws_ref_model.tflite": (16_000, 8_272, 24_272),
    "tiny_pretrainedResnet_quant.tflite": (49_152, 6_832, 55_984),
    "tflm_micro_speech_quantized.tflite": (5_968, 1_616, 7_584),
    "tflm_hello_world_int8.tflite": (32, 1_472, 1_504),
}


def describe(graph: Graph) -> str:
    """One line per op with its attrs and input shapes, for failure messages."""
    return "\n".join(
        f"  {op.name}: {op.attrs} inputs {[graph.tensor(n).shape for n in op.inputs if n]}"
        for op in graph.ops)


def assert_reference_matches_tflm(graph: Graph, rng: np.random.Generator, runs: int = 3) -> None:
    model = write_tflite(graph)
    for _ in range(runs):
        inputs = random_input(graph, rng)
        expected = run_tflm(model, inputs)
        got = run_reference(graph, inputs)
        for name, e, g in zip(graph.outputs, expected, got, strict=True):
            e = e.reshape(g.shape)
            if not np.array_equal(e, g):
                diff = np.abs(e.astype(np.float64) - g.astype(np.float64)).max()
                pytest.fail(f"reference != TFLM on output {name} (max |diff| {diff}, "
                            f"{np.mean(e != g):.0%} of elements)\n{describe(graph)}")


@pytest.mark.parametrize("seed", range(10))
def test_tflm_runs_written_graph(seed: int) -> None:
    graph = random_graph(np.random.default_rng(seed), KINDS)
    outputs = run_tflm(write_tflite(graph), random_input(graph, np.random.default_rng(seed)))
    assert len(outputs) == len(graph.outputs)
    for name, y in zip(graph.outputs, outputs, strict=True):
        t = graph.tensor(name)
        assert y.size == t.size and y.dtype == np.dtype(t.dtype), (name, y.shape, y.dtype)


def test_written_model_reads_back() -> None:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    graph = random_graph(np.random.default_rng(7), KINDS)
    data = write_tflite(graph)
    assert fb.Model.ModelBufferHasIdentifier(data, 0)
    model = fb.ModelT.InitFromPackedBuf(data, 0)
    assert model.version == 3 and len(model.subgraphs) == 1
    assert model.buffers[0].data is None
    for code in model.operatorCodes:
        assert code.deprecatedBuiltinCode == min(code.builtinCode, 127)
    sub = model.subgraphs[0]
    by_name = {t.name.decode(): t for t in sub.tensors}
    for t in graph.tensors.values():
        w = by_name[t.name]
        assert tuple(w.shape) == t.shape
        if t.data is not None:
            assert model.buffers[w.buffer].data.tobytes() == t.data.astype(t.data.dtype).tobytes()
        else:
            assert w.buffer == 0
        if t.quant is not None:
            np.testing.assert_array_equal(w.quantization.scale, t.quant.scale)
            np.testing.assert_array_equal(w.quantization.zeroPoint, t.quant.zero_point)
    assert [sub.tensors[i].name.decode() for i in sub.outputs] == graph.outputs
    assert len(sub.operators) == len(graph.ops)


def test_writer_and_generator_are_deterministic() -> None:
    a = write_tflite(random_graph(np.random.default_rng(3), KINDS))
    b = write_tflite(random_graph(np.random.default_rng(3), KINDS))
    assert a == b


@pytest.mark.parametrize("seed", range(20))
def test_reference_matches_tflm(seed: int) -> None:
    rng = np.random.default_rng(seed)
    assert_reference_matches_tflm(random_graph(rng, KINDS), rng)


@pytest.mark.parametrize("kind", sorted(FOCUS))
def test_reference_matches_tflm_per_op(kind: str) -> None:
    seen = 0
    for seed in range(6):
        rng = np.random.default_rng(1000 + seed)
        graph = random_graph(rng, FOCUS[kind])
        seen += any(op.kind == kind for op in graph.ops)
        assert_reference_matches_tflm(graph, rng)
    assert seen, f"no graph exercised {kind}"


def test_unknown_op_kind_is_a_user_error() -> None:
    q = QuantParams(np.array([0.1], np.float32), np.array([0]))
    graph = Graph({"x": Tensor("x", (1, 4), "int8", q), "y": Tensor("y", (1, 4), "int8", q)},
                  [Op("op_0", "NO_SUCH_OP", ["x"], ["y"])], ["x"], ["y"])
    with pytest.raises(UnsupportedError, match="NO_SUCH_OP"):
        write_tflite(graph)


def test_missing_tflm_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    graph = random_graph(np.random.default_rng(0), KINDS)
    # A None entry in sys.modules makes importing that module raise ImportError; cover the
    # submodules too, since an import of a cached submodule never looks at its parents.
    for name in [m for m in sys.modules if m.split(".")[0] == "tflite_micro"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(TinyEngineError, match="pip install tflite-micro"):
        write_tflite(graph)
    with pytest.raises(TinyEngineError, match="pip install tflite-micro"):
        run_tflm(b"", [])


def test_tflm_arena_counts_variable_bytes_of_stateful_models(shared_models: Path) -> None:
    # MANIFEST.md: keyword_scrambled keeps 10240 B of SVDF state, micro_speech_lstm 240 B.
    for model, variable in (("tflm_keyword_scrambled.tflite", 10240),
                            ("tflm_micro_speech_lstm.tflite", 240)):
        assert tflm_arena(shared_models / model)["variable"] == variable, model


def test_run_tflm_checks_input_count() -> None:
    graph = random_graph(np.random.default_rng(0), KINDS)
    with pytest.raises(TinyEngineError, match="takes 1 inputs"):
        run_tflm(write_tflite(graph), [])


def test_tflm_arena_of_hello_world_matches_manifest(shared_models: Path) -> None:
    head, tail, total = MANIFEST_ARENA["tflm_hello_world_int8.tflite"]
    got = tflm_arena(shared_models / "tflm_hello_world_int8.tflite")
    assert got == {"head": head, "tail": tail, "total": total, "variable": 0}


def test_tflm_arena_of_all_shared_models(shared_models: Path) -> None:
    # The figures must not depend on the arena we offer, as long as it is large enough.
    for model, (head, tail, total) in MANIFEST_ARENA.items():
        got = tflm_arena((shared_models / model).read_bytes(), arena_size=256 * 1024)
        assert got == {"head": head, "tail": tail, "total": total, "variable": 0}, model


@pytest.mark.parametrize("model", MODEL_FILES)
def test_real_model_survives_read_write_read(shared_models: Path, model: str) -> None:
    """Reader then writer gives a model that TFLM runs to the same outputs, and reads back equal."""
    path = shared_models / model
    graph = load_tflite(path)
    rewritten = write_tflite(graph)
    again = parse_tflite(rewritten, model)

    def written_attrs(op: Op) -> dict:
        # A TRANSPOSE_CONV whose output shape is a runtime tensor (the SEANet model feeds it as
        # a graph input; TFLM reads the output tensor's shape) is written with it as a constant.
        if op.kind == "TRANSPOSE_CONV" and "output_shape" not in op.attrs:
            return {**op.attrs, "output_shape": graph.tensor(op.outputs[0]).shape}
        return op.attrs

    assert [(op.kind, op.inputs, op.outputs, op.attrs) for op in again.ops] == \
        [(op.kind, op.inputs, op.outputs, written_attrs(op)) for op in graph.ops]
    assert set(again.tensors) == set(graph.tensors)
    for name, t in graph.tensors.items():
        u = again.tensors[name]
        assert (u.shape, u.dtype) == (t.shape, t.dtype), name
        assert (u.data is None) == (t.data is None), name
        if t.data is not None:
            assert u.data is not None and np.array_equal(u.data, t.data), name
    inputs = random_inputs(graph, np.random.default_rng(0))
    for a, b in zip(run_tflm(path.read_bytes(), inputs), run_tflm(rewritten, inputs), strict=True):
        np.testing.assert_array_equal(a, b)
