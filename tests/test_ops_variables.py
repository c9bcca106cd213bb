"""TFLite resource variables (VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE): C == reference == TFLM.

Models: an accumulator y = x + v; v := y (READ -> ADD -> ASSIGN) in int8 and int16; two
variables (an accumulator and a one-step delay of the input); an assign before the read in one
invoke. Each runs as a stream of 10 invokes with the state carried, then again after reset(),
in the generated C, the reference session and TFLM (through the writer, which puts VAR_HANDLE
ops back). One model is written directly with the flatbuffer object API, two handles naming one
variable, to check the reader on a file we did not write. The first invoke of the int8 models
reads the default value, the zero point (non-zero here), which an engine starting at 0 fails.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
import pytest

from tests.sanitized import check_sanitized_demo
from tinyengine.codegen.project import compile_graph
from tinyengine.errors import UnsupportedError
from tinyengine.frontend.tflite_reader import parse_tflite
from tinyengine.frontend.tflite_writer import write_tflite
from tinyengine.ir import DTYPES, Graph, Op, QuantParams, Tensor, verify
from tinyengine.reference import ReferenceSession, run_reference
from tinyengine.runtime.host import HostModel

SHAPE = (1, 8)
STREAM = 10


def qp(scale: float, zp: int) -> QuantParams:
    return QuantParams(np.array([scale], np.float32), np.array([zp], np.int64))


def _q(dtype: str, scale: float, zp: int) -> QuantParams:
    return qp(scale, zp if dtype == "int8" else 0)  # int16 activations are symmetric


def accumulator(dtype: str = "int8", zp: int = -7) -> Graph:
    """r = READ(v); y = ADD(x, r); ASSIGN(v, y) -> y/assigned. Output y."""
    qx, qv = _q(dtype, 0.05, 3), _q(dtype, 0.1, zp)
    t = {"x": Tensor("x", SHAPE, dtype, qx), "v": Tensor("v", SHAPE, dtype, qv, variable=True),
         "r": Tensor("r", SHAPE, dtype, qv), "y": Tensor("y", SHAPE, dtype, qv),
         "y/assigned": Tensor("y/assigned", SHAPE, dtype, qv)}
    ops = [Op("read", "READ_VARIABLE", ["v"], ["r"]),
           Op("add", "ADD", ["x", "r"], ["y"], {"activation": "NONE"}),
           Op("assign", "ASSIGN_VARIABLE", ["v", "y"], ["y/assigned"])]
    g = Graph(t, ops, ["x"], ["y"], name="accumulator")
    verify(g)
    return g


def two_variables() -> Graph:
    """The accumulator on a, and b: a one-step delay of x; outputs y = x + a, z = y + b."""
    g = accumulator()
    qx, qa = g.tensor("x").quant, g.tensor("v").quant
    g.tensors.update({
        "b": Tensor("b", SHAPE, "int8", qx, variable=True),
        "rb": Tensor("rb", SHAPE, "int8", qx), "z": Tensor("z", SHAPE, "int8", qp(0.15, 11)),
        "x/assigned": Tensor("x/assigned", SHAPE, "int8", qx)})
    g.ops += [Op("read_b", "READ_VARIABLE", ["b"], ["rb"]),
              Op("add_b", "ADD", ["y", "rb"], ["z"], {"activation": "NONE"}),
              Op("assign_b", "ASSIGN_VARIABLE", ["b", "x"], ["x/assigned"])]
    g.outputs = ["y", "z"]
    assert qa is not None
    verify(g)
    return g


def assign_then_read() -> Graph:
    """ASSIGN(v, x) before READ(v) in one invoke: the read sees this invoke's x."""
    q = qp(0.05, 3)
    t = {"x": Tensor("x", SHAPE, "int8", q), "v": Tensor("v", SHAPE, "int8", q, variable=True),
         "r": Tensor("r", SHAPE, "int8", q), "x/assigned": Tensor("x/assigned", SHAPE, "int8", q),
         "y": Tensor("y", SHAPE, "int8", qp(0.1, -2))}
    ops = [Op("assign", "ASSIGN_VARIABLE", ["v", "x"], ["x/assigned"]),
           Op("read", "READ_VARIABLE", ["v"], ["r"]),
           Op("add", "ADD", ["r", "x"], ["y"], {"activation": "NONE"})]
    g = Graph(t, ops, ["x"], ["y"], name="assign_then_read")
    verify(g)
    return g


def stream(graph: Graph, n: int, seed: int = 0) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        case = []
        for name in graph.inputs:
            t = graph.tensor(name)
            lo, hi = (-128, 128) if t.dtype == "int8" else (-3000, 3000)
            case.append(rng.integers(lo, hi, t.shape).astype(DTYPES[t.dtype]))
        out.append(case)
    return out


def check_stream(graph: Graph, tmp_path: Path, tflm: Any, model: bytes | None = None,
                 inplace: bool = True) -> None:
    """C == reference == TFLM over a stream with state carried, then after reset()."""
    compile_graph(graph, tmp_path / "p", prefix="var", inplace=inplace)
    host, ref = HostModel(tmp_path / "p"), ReferenceSession(graph)
    oracle = tflm.TflmSession(model if model is not None else write_tflite(graph))
    cases = stream(graph, STREAM)
    carried = False
    for case in cases:
        r = ref.invoke(case)
        for got in (host.invoke(case), oracle.invoke(case)):
            for a, b in zip(got, r):
                np.testing.assert_array_equal(a, b)
        carried |= any(not np.array_equal(a, b) for a, b in zip(r, run_reference(graph, case)))
    assert carried or graph.name == "assign_then_read", "state never changed an output"
    host.reset()
    oracle.reset()
    ref.reset()
    for case in cases[:4]:
        r = ref.invoke(case)
        for got in (host.invoke(case), oracle.invoke(case)):
            for a, b in zip(got, r):
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", ["int8", "int16"])
def test_accumulator_stream(tmp_path: Path, tflm: Any, dtype: str) -> None:
    check_stream(accumulator(dtype), tmp_path, tflm)


def test_accumulator_without_inplace(tmp_path: Path, tflm: Any) -> None:
    """The assign's output gets a buffer of its own: the kernel copies the value there too."""
    check_stream(accumulator(), tmp_path, tflm, inplace=False)
    report = compile_graph(accumulator(), tmp_path / "q", prefix="var", inplace=False)
    assert "y/assigned" in {b["name"] for b in report["memory_plan"]["buffers"]}


def test_two_variables_stream(tmp_path: Path, tflm: Any) -> None:
    check_stream(two_variables(), tmp_path, tflm)


def test_assign_then_read(tmp_path: Path, tflm: Any) -> None:
    g = assign_then_read()
    check_stream(g, tmp_path, tflm)
    x = stream(g, 1)[0]
    # The read sees this invoke's value: y = x + x, not x + the default.
    np.testing.assert_array_equal(run_reference(g, x)[0],
                                  run_reference(_drop_assign(g), x)[0])


def _drop_assign(g: Graph) -> Graph:
    """assign_then_read with READ replaced by the value itself (y = ADD(x, x))."""
    ops = [Op("add", "ADD", ["x", "x"], ["y"], {"activation": "NONE"})]
    return Graph({n: g.tensor(n) for n in ("x", "y")}, ops, ["x"], ["y"])


def test_first_read_is_the_zero_point(tmp_path: Path) -> None:
    """The default value is the variable's zero point (int8), as TFLM's Allocate memsets it."""
    g = accumulator(zp=-7)
    assert ReferenceSession(g).state["v"].flat[0] == -7
    compile_graph(g, tmp_path / "p", prefix="var")
    x = [np.zeros(SHAPE, np.int8) + 3]  # x = its zero point: real 0, so y = the default
    y = HostModel(tmp_path / "p").invoke(x)[0]
    assert (y == -7).all()


def test_assign_view_costs_no_arena(tmp_path: Path) -> None:
    g = accumulator()
    report = compile_graph(g, tmp_path / "p", prefix="var")
    plan = report["memory_plan"]
    assert report["persistent_bytes"] == g.tensor("v").nbytes
    names = {b["name"] for b in plan["buffers"]}
    assert "v" not in names and "v" in plan["state_offsets"]
    # The assign's view lives in y's buffer (y in x's, ADD in place): x and r only.
    assert "y/assigned" not in names
    assert report["arena_bytes"] <= 2 * 8, report["arena_bytes"]
    source = (tmp_path / "p" / "var_model.c").read_text()
    assert "te_assign_variable_s8(" in source and "te_read_variable_s8(" in source


def test_writer_round_trip() -> None:
    g = two_variables()
    back = parse_tflite(write_tflite(g))
    assert [op.kind for op in back.ops] == [op.kind for op in g.ops]
    assert {t.name for t in back.state()} == {"v", "b"}
    assign = back.ops[2]
    assert assign.inputs[0] == "v" and assign.inputs[1] == "y"


# -- a model written with the flatbuffer object API, not through our writer -----------------

def _fb() -> Any:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb
    return fb


def _tensor(fb: Any, name: str, shape: tuple[int, ...], ttype: int,
            q: tuple[float, int] | None = None) -> Any:
    t = fb.TensorT()
    t.name, t.shape, t.type, t.buffer = name, list(shape), ttype, 0
    if q is not None:
        t.quantization = fb.QuantizationParametersT()
        t.quantization.scale, t.quantization.zeroPoint = [q[0]], [q[1]]
    return t


def _operator(fb: Any, code: int, inputs: list[int], outputs: list[int],
              options: tuple[str, Any] | None = None) -> Any:
    o = fb.OperatorT()
    o.opcodeIndex, o.inputs, o.outputs = code, inputs, outputs
    if options is not None:
        o.builtinOptionsType = getattr(fb.BuiltinOptions, options[0])
        o.builtinOptions = options[1]
    return o


def _handle(fb: Any, out: int, shared: str, container: str | None = "") -> Any:
    o = fb.VarHandleOptionsT()
    o.container, o.sharedName = container, shared
    return _operator(fb, 0, [], [out], ("VarHandleOptions", o))


def handbuilt(assign_shapes: tuple[tuple[int, ...], ...] = (SHAPE,), unused_handle: bool = False
              ) -> bytes:
    """Tensors x, two RESOURCE handles of variable "acc", r, y: r = READ(h1); y = ADD(x, r);
    ASSIGN(h2, y). assign_shapes: more than one adds ASSIGN(h2, y2) of a RESHAPE of y."""
    fb = _fb()
    i8, res = fb.TensorType.INT8, fb.TensorType.RESOURCE
    tensors = [_tensor(fb, "x", SHAPE, i8, (0.05, 3)), _tensor(fb, "h1", (), res),
               _tensor(fb, "h2", (), res), _tensor(fb, "r", SHAPE, i8, (0.1, -7)),
               _tensor(fb, "y", SHAPE, i8, (0.1, -7))]
    builtin = fb.BuiltinOperator
    kinds = [builtin.VAR_HANDLE, builtin.READ_VARIABLE, builtin.ADD, builtin.ASSIGN_VARIABLE,
             builtin.RESHAPE]
    codes = []
    for k in kinds:
        c = fb.OperatorCodeT()
        c.builtinCode, c.deprecatedBuiltinCode, c.version = k, min(k, 127), 1
        codes.append(c)
    ops = [_handle(fb, 1, "acc"), _operator(fb, 1, [1], [3]),
           _operator(fb, 2, [0, 3], [4], ("AddOptions", fb.AddOptionsT())),
           _handle(fb, 2, "acc"), _operator(fb, 3, [2, 4], [])]
    for shape in assign_shapes[1:]:
        tensors.append(_tensor(fb, f"y{shape}", shape, i8, (0.1, -7)))
        o = fb.ReshapeOptionsT()
        o.newShape = list(shape)
        ops.append(_operator(fb, 4, [4], [len(tensors) - 1], ("ReshapeOptions", o)))
        ops.append(_operator(fb, 3, [2, len(tensors) - 1], []))
    if unused_handle:
        tensors.append(_tensor(fb, "h3", (), res))
        ops.append(_handle(fb, len(tensors) - 1, "lost"))
    sub = fb.SubGraphT()
    sub.tensors, sub.inputs, sub.outputs, sub.operators = tensors, [0], [4], ops
    m = fb.ModelT()
    m.version, m.operatorCodes, m.subgraphs, m.buffers = 3, codes, [sub], [fb.BufferT()]
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def test_reader_on_a_handbuilt_model(tmp_path: Path, tflm: Any) -> None:
    model = handbuilt()
    g = parse_tflite(model, "acc.tflite")
    assert [op.kind for op in g.ops] == ["READ_VARIABLE", "ADD", "ASSIGN_VARIABLE"]
    # Two handles of one (container, shared_name): one variable, read and assigned.
    assert [t.name for t in g.state()] == ["acc"]
    assert g.ops[0].inputs == ["acc"] and g.ops[2].inputs[0] == "acc"
    assert g.tensor("acc").zero_point == -7
    check_stream(g, tmp_path, tflm, model=model)


def test_cli_verify_streams(tmp_path: Path) -> None:
    path = tmp_path / "acc.tflite"
    path.write_bytes(handbuilt())
    run = subprocess.run([sys.executable, "-m", "tinyengine.cli", "verify", str(path),
                          "--random", "10"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr + run.stdout
    assert "one stream with the state carried" in run.stdout, run.stdout


def test_sanitized(tmp_path: Path) -> None:
    for g in (accumulator("int16"), two_variables()):
        project = tmp_path / g.name
        compile_graph(g, project, prefix="var")
        check_sanitized_demo(project, "var", g, stream(g, STREAM, seed=5))


# -- refusals --------------------------------------------------------------------------------

def test_refuses_handle_never_used() -> None:
    with pytest.raises(UnsupportedError, match=r"op 5 \(VAR_HANDLE\): variable 'lost' is never "
                                               "assigned nor read"):
        parse_tflite(handbuilt(unused_handle=True))


def test_refuses_mismatched_assign_shapes() -> None:
    with pytest.raises(UnsupportedError, match=r"variable 'acc': op 6 \(ASSIGN_VARIABLE\) writes "
                                               r"y\(1, 2, 4\) int8 \(1, 2, 4\)"):
        parse_tflite(handbuilt(assign_shapes=(SHAPE, (1, 2, 4))))


def test_ir_refusals() -> None:
    g = accumulator()
    g.ops = [g.ops[0], g.ops[1]]  # read, never assigned
    g.tensors.pop("y/assigned")
    with pytest.raises(UnsupportedError, match="variable v is read but never assigned"):
        verify(g)
    g = accumulator()
    g.tensors["r"] = Tensor("r", (1, 4, 2), "int8", g.tensor("r").quant)
    with pytest.raises(UnsupportedError, match=r"op read \(READ_VARIABLE\): variable v is int8 "
                                               r"\(1, 8\) but the output r is int8 \(1, 4, 2\)"):
        verify(g)
    g = accumulator()
    g.tensors["c"] = Tensor("c", SHAPE, "int8", g.tensor("y").quant,
                            np.zeros(SHAPE, np.int8))
    g.ops[2].inputs = ["v", "c"]
    with pytest.raises(UnsupportedError, match="assigns the constant c to variable v"):
        verify(g)
    g = accumulator()
    g.outputs = ["y/assigned"]
    with pytest.raises(UnsupportedError, match="ASSIGN_VARIABLE has no outputs"):
        verify(g)
    g = accumulator(zp=-7)
    g.tensors["v"].quant = qp(0.1, 5)
    with pytest.raises(UnsupportedError, match="first assigned value's zero point"):
        verify(g)
