"""CONCATENATION, PACK, UNPACK, DEPTH_TO_SPACE and SPACE_TO_DEPTH: data movement, bit for bit.

Evidence, layer by layer:
1. seeded random single-op and multi-op IR graphs, written to .tflite and run three ways (the
   generated C on the host, the numpy reference, TFLM's interpreter) with tinyengine.verify;
   the reference is also held against index formulas written here from TFLM's loops;
2. the C kernels called directly: invalid parameters and null pointers return TE_ERR_ARG and
   write nothing; CONCATENATION skips an input already in its slice;
3. a multi-op project built and run under ASan/UBSan;
4. invalid configurations refused by ir.verify with the op and tensor named;
5. ONNX: Concat from a small PyTorch module, DepthToSpace/SpaceToDepth from hand-made ONNX
   graphs, quantised and compiled (C == reference == TFLM), the QDQ export run by onnxruntime.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinyengine.errors import UnsupportedError
from tinyengine.frontend.tflite_reader import parse_tflite
from tinyengine.frontend.tflite_writer import write_tflite
from tinyengine.ir import Graph, Op, QuantParams, Tensor, verify
from tinyengine.ops import get_op
from tinyengine.ops.concatenation import TFLM_MAX_INPUTS
from tinyengine.reference import run_reference
from tinyengine.verify import verify_graph

from . import ckernels

TE_OK, TE_ERR_ARG = 0, 1


# ----------------------------------------------------------------------------- graph helpers

def qp(scale: float, zp: int) -> QuantParams:
    return QuantParams(np.array([scale], np.float32), np.array([zp], np.int64))


def rand_q(rng: np.random.Generator) -> QuantParams:
    return qp(float(rng.uniform(0.005, 0.2)), int(rng.integers(-128, 128)))


def one_op(kind: str, ins: list[tuple[int, ...]], attrs: dict[str, Any], q: QuantParams,
           n_out: int = 1) -> Graph:
    """A graph of one op; output shapes from the op's own rule (verify checks them again)."""
    names = [f"x{i}" for i in range(len(ins))]
    outs = [f"y{i}" for i in range(n_out)]
    tensors = {n: Tensor(n, tuple(s), "int8", q) for n, s in zip(names, ins)}
    op = Op("op0", kind, names, outs, attrs)
    g = Graph(tensors, [op], names, outs, name=kind.lower())
    for n, shape in zip(outs, get_op(kind).infer_shapes(g, op)):
        tensors[n] = Tensor(n, tuple(shape), "int8", q)
    verify(g)
    return g


def assert_exact(graph: Graph, seed: int, n_random: int = 4) -> None:
    """C == reference == TFLM on seeded random inputs."""
    verdicts, _ = verify_graph(graph, write_tflite(graph), n_random=n_random, seed=seed)
    for v in verdicts:
        assert v.exact and v.max_diff_tflm == 0, v.line(0)


def rand_shape(rng: np.random.Generator, rank: int, hi: int = 5) -> list[int]:
    return [int(d) for d in rng.integers(1, hi + 1, rank)]


# ------------------------------------------------------ 1. reference == C == TFLM, random ops

@pytest.mark.parametrize("seed", range(8))
def test_concatenation_random(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(1, 6))
    axis = int(rng.integers(0, rank))
    base = rand_shape(rng, rank)
    ins = []
    for _ in range(int(rng.integers(2, 6))):
        s = list(base)
        s[axis] = int(rng.integers(1, 5))
        ins.append(tuple(s))
    g = one_op("CONCATENATION", ins, {"axis": axis, "activation": "NONE"}, rand_q(rng))
    assert_exact(g, seed)


@pytest.mark.parametrize("seed", range(5))
def test_pack_unpack_random(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    rank = int(rng.integers(1, 5))
    shape = tuple(rand_shape(rng, rank))
    n = int(rng.integers(1, 5))
    pack = one_op("PACK", [shape] * n, {"axis": int(rng.integers(0, rank + 1))}, rand_q(rng))
    assert_exact(pack, seed)
    packed = tuple(rand_shape(rng, rank + 1))
    axis = int(rng.integers(0, rank + 1))
    unpack = one_op("UNPACK", [packed], {"axis": axis}, rand_q(rng), n_out=packed[axis])
    assert_exact(unpack, seed)


@pytest.mark.parametrize("seed", range(5))
def test_depth_space_random(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    b = int(rng.integers(1, 4))
    n, h, w, c = (int(rng.integers(1, 3)), *rand_shape(rng, 2, 4), int(rng.integers(1, 4)))
    d2s = one_op("DEPTH_TO_SPACE", [(n, h, w, c * b * b)], {"block_size": b}, rand_q(rng))
    assert_exact(d2s, seed)
    s2d = one_op("SPACE_TO_DEPTH", [(n, h * b, w * b, c)], {"block_size": b}, rand_q(rng))
    assert_exact(s2d, seed)


def chain_graph(q: QuantParams) -> Graph:
    """x -> D2S -> MAX_POOL -> CONCAT(x, .) -> UNPACK (one slice unused) -> PACK -> S2D; the
    concatenation output is also a graph output and x is read by two ops."""
    t: dict[str, Tensor] = {}

    def add(name: str, shape: tuple[int, ...]) -> str:
        t[name] = Tensor(name, shape, "int8", q)
        return name

    add("x", (1, 4, 4, 8))
    add("d", (1, 8, 8, 2))
    add("p", (1, 4, 4, 2))
    add("c", (1, 4, 4, 10))
    for i in range(4):
        add(f"u{i}", (1, 4, 10))
    add("k", (1, 4, 10, 3))
    add("s", (1, 2, 5, 12))
    ops = [Op("d2s", "DEPTH_TO_SPACE", ["x"], ["d"], {"block_size": 2}),
           Op("pool", "MAX_POOL_2D", ["d"], ["p"], {"stride": (2, 2), "filter": (2, 2),
                                                     "padding": "VALID", "activation": "NONE"}),
           Op("cat", "CONCATENATION", ["x", "p"], ["c"], {"axis": 3, "activation": "NONE"}),
           Op("unpack", "UNPACK", ["c"], [f"u{i}" for i in range(4)], {"axis": 1}),
           Op("pack", "PACK", ["u3", "u0", "u2"], ["k"], {"axis": 3}),
           Op("s2d", "SPACE_TO_DEPTH", ["k"], ["s"], {"block_size": 2})]
    g = Graph(t, ops, ["x"], ["s", "c"], name="chain")
    verify(g)
    return g


def test_multi_op_chain_exact() -> None:
    assert_exact(chain_graph(qp(0.07, -5)), seed=3, n_random=6)


def test_concatenation_of_several_graph_inputs_and_a_repeated_input() -> None:
    q = qp(0.1, 7)
    t = {n: Tensor(n, s, "int8", q) for n, s in
         (("a", (2, 3, 1)), ("b", (2, 3, 4)), ("y", (2, 3, 9)))}
    g = Graph(t, [Op("cat", "CONCATENATION", ["a", "b", "b"], ["y"],
                     {"axis": 2, "activation": "NONE"})], ["a", "b"], ["y"])
    verify(g)
    assert_exact(g, seed=1)


def test_more_inputs_than_tflm_allows_still_run_in_c() -> None:
    # TFLM refuses more than 10 inputs; the copy is the same, checked against the reference.
    g = one_op("CONCATENATION", [(1, 2, 3)] * (TFLM_MAX_INPUTS + 2),
               {"axis": 1, "activation": "NONE"},
               qp(0.05, 0))
    verdicts, _ = verify_graph(g, None, n_random=2, seed=0)
    assert all(v.exact for v in verdicts)


# Index formulas written from TFLM's loops (concatenation.h, pack.cc, unpack.cc,
# depth_to_space.h, space_to_depth.h), element by element, against the numpy references.

def naive_concat(xs: list[np.ndarray], axis: int) -> np.ndarray:
    outer = int(np.prod(xs[0].shape[:axis]))
    rows = [x.reshape(outer, -1) for x in xs]
    out = []
    for k in range(outer):
        for r in rows:
            out.extend(r[k].tolist())
    return np.array(out, np.int8)


def naive_d2s(x: np.ndarray, b: int) -> np.ndarray:
    n, h, w, cd = x.shape
    c = cd // (b * b)
    y = np.zeros((n, h * b, w * b, c), np.int8)
    for i in np.ndindex(*y.shape):
        ob, oh, ow, od = i
        y[i] = x[ob, oh // b, ow // b, od + ((oh % b) * b + ow % b) * c]
    return y


def naive_s2d(x: np.ndarray, b: int) -> np.ndarray:
    n, h, w, c = x.shape
    y = np.zeros((n, h // b, w // b, c * b * b), np.int8)
    for i in np.ndindex(*x.shape):
        ib, ih, iw, id_ = i
        y[ib, ih // b, iw // b, id_ + ((ih % b) * b + iw % b) * c] = x[i]
    return y


@pytest.mark.parametrize("seed", range(3))
def test_references_match_tflm_loops(seed: int) -> None:
    rng = np.random.default_rng(300 + seed)
    q = qp(0.1, 0)
    g = one_op("CONCATENATION", [(2, 3, 2), (2, 1, 2), (2, 4, 2)],
               {"axis": 1, "activation": "NONE"}, q)
    xs = [rng.integers(-128, 128, graph_in.shape, dtype=np.int8)
          for graph_in in (g.tensor(n) for n in g.inputs)]
    np.testing.assert_array_equal(run_reference(g, xs)[0].ravel(), naive_concat(xs, 1))
    b = int(rng.integers(2, 4))
    x = rng.integers(-128, 128, (1, 2, 3, 2 * b * b), dtype=np.int8)
    d2s = one_op("DEPTH_TO_SPACE", [x.shape], {"block_size": b}, q)
    np.testing.assert_array_equal(run_reference(d2s, [x])[0], naive_d2s(x, b))
    z = rng.integers(-128, 128, (2, 2 * b, 3 * b, 3), dtype=np.int8)
    s2d = one_op("SPACE_TO_DEPTH", [z.shape], {"block_size": b}, q)
    np.testing.assert_array_equal(run_reference(s2d, [z])[0], naive_s2d(z, b))
    # PACK interleaves blocks; UNPACK undoes it.
    parts = [rng.integers(-128, 128, (3, 2), dtype=np.int8) for _ in range(4)]
    pk = one_op("PACK", [(3, 2)] * 4, {"axis": 1}, q)
    packed = run_reference(pk, parts)[0]
    for k in range(3):
        for i in range(4):
            np.testing.assert_array_equal(packed[k, i], parts[i][k])
    up = one_op("UNPACK", [(3, 4, 2)], {"axis": 1}, q, n_out=4)
    for got, want in zip(run_reference(up, [packed]), parts):
        np.testing.assert_array_equal(got, want)


def test_tflite_round_trip_keeps_attrs() -> None:
    g = chain_graph(qp(0.05, 1))
    back = parse_tflite(write_tflite(g))
    assert [(op.kind, op.attrs) for op in back.ops
            if op.kind != "MAX_POOL_2D"] == [(op.kind, op.attrs) for op in g.ops
                                              if op.kind != "MAX_POOL_2D"]
    assert [op.outputs for op in back.ops] == [op.outputs for op in g.ops]


def test_concat_axis_offsets() -> None:
    q = qp(0.1, 0)
    cat = get_op("CONCATENATION")
    g = one_op("CONCATENATION", [(1, 1, 2, 3), (1, 1, 5, 3), (1, 1, 1, 3)],
               {"axis": 2, "activation": "NONE"}, q)
    offsets = cat.concat_axis_offsets(g, g.ops[0])  # type: ignore[attr-defined]
    assert offsets == [0, 6, 21]
    # Each input really is that byte range of the output.
    rng = np.random.default_rng(0)
    xs = [rng.integers(-128, 128, g.tensor(n).shape, dtype=np.int8) for n in g.inputs]
    y = run_reference(g, xs)[0].ravel()
    for x, off in zip(xs, offsets):
        np.testing.assert_array_equal(y[off:off + x.size], x.ravel())
    # Any dim > 1 before the axis interleaves the inputs: no contiguous ranges.
    g2 = one_op("CONCATENATION", [(2, 3), (2, 1)], {"axis": 1, "activation": "NONE"}, q)
    assert cat.concat_axis_offsets(g2, g2.ops[0]) is None  # type: ignore[attr-defined]
    g3 = one_op("CONCATENATION", [(2, 3), (1, 3)], {"axis": 0, "activation": "NONE"}, q)
    assert cat.concat_axis_offsets(g3, g3.ops[0]) == [0, 6]  # type: ignore[attr-defined]


def test_quant_rules_share_every_pair() -> None:
    q = qp(0.1, 0)
    g = one_op("CONCATENATION", [(1, 2), (1, 3)], {"axis": 1, "activation": "NONE"}, q)
    assert get_op("CONCATENATION").quant_rule(g, g.ops[0]).share == [("x0", "y0"),
                                                                     ("x1", "y0")]
    g = one_op("UNPACK", [(2, 3)], {"axis": 0}, q, n_out=2)
    assert get_op("UNPACK").quant_rule(g, g.ops[0]).share == [("y0", "x0"), ("y1", "x0")]


# --------------------------------------------------------------------- 2. C kernels directly

CDEF = """
typedef enum { TE_OK = 0, TE_ERR_ARG = 1, TE_ERR_SCRATCH = 2 } te_status_t;
typedef struct { int32_t n; int32_t h; int32_t w; int32_t c; } te_dims_t;
typedef struct { int32_t n_inputs; int32_t outer; int32_t output_row;
                 const int32_t *copy_sizes; } te_concatenation_params_t;
te_status_t te_concatenation_s8(const te_concatenation_params_t *p, const int8_t *input0, ...);
typedef struct { int32_t count; int32_t outer; int32_t copy_size; } te_pack_params_t;
te_status_t te_pack_s8(const te_pack_params_t *p, const int8_t *input0, ...);
te_status_t te_unpack_s8(const te_pack_params_t *p, const int8_t *input, ...);
typedef struct { te_dims_t input; te_dims_t output; int32_t block_size; }
    te_depth_space_params_t;
te_status_t te_depth_to_space_s8(const te_depth_space_params_t *p, const int8_t *input,
                                 int8_t *output);
te_status_t te_space_to_depth_s8(const te_depth_space_params_t *p, const int8_t *input,
                                 int8_t *output);
"""


@pytest.fixture(scope="module")
def kern() -> tuple[Any, Any]:
    return ckernels.build(["te_concatenation.h", "te_pack.h", "te_depth_space.h"],
                          ["te_concatenation.c", "te_pack.c", "te_depth_space.c"], CDEF)


def test_c_concatenation_domain_and_in_place_slice(kern: tuple[Any, Any]) -> None:
    ffi, lib = kern
    a = np.arange(6, dtype=np.int8)
    b = np.arange(10, 14, dtype=np.int8)
    out = np.full(10, 99, np.int8)
    sizes = ffi.new("int32_t[]", [3, 2])

    def call(n: int, outer: int, row: int, pa: Any, pb: Any, po: Any) -> int:
        p = ffi.new("te_concatenation_params_t *", [n, outer, row, sizes])
        return int(lib.te_concatenation_s8(p, pa, ffi.cast("const int8_t *", pb),
                                           ffi.cast("int8_t *", po)))

    ptr = ffi.from_buffer
    # Two rows: [a0 a1 a2 b0 b1] [a3 a4 a5 b2 b3].
    assert call(2, 2, 5, ptr("int8_t[]", a), ptr("int8_t[]", b), ptr("int8_t[]", out)) == TE_OK
    np.testing.assert_array_equal(out, [0, 1, 2, 10, 11, 3, 4, 5, 12, 13])
    for bad in ((2, 2, 6), (0, 2, 5), (2, 0, 5)):  # row sum, input count, outer
        out[:] = 99
        assert call(*bad, ptr("int8_t[]", a), ptr("int8_t[]", b),
                    ptr("int8_t[]", out)) == TE_ERR_ARG
        assert (out == 99).all()
    assert call(2, 2, 5, ptr("int8_t[]", a), ffi.NULL, ptr("int8_t[]", out)) == TE_ERR_ARG
    assert call(2, 2, 5, ptr("int8_t[]", a), ptr("int8_t[]", b), ffi.NULL) == TE_ERR_ARG
    assert (out == 99).all()
    # One row: an input already at its offset in the output stays, the other is copied in.
    buf = np.array([7, 7, 7, 5, 6], np.int8)
    whole = ptr("int8_t[]", buf)
    sizes[0], sizes[1] = 3, 2
    src = np.array([1, 2, 3], np.int8)
    assert call(2, 1, 5, ptr("int8_t[]", src), ffi.cast("int8_t *", whole) + 3, whole) == TE_OK
    np.testing.assert_array_equal(buf, [1, 2, 3, 5, 6])


def test_c_pack_unpack_and_depth_space_refuse_bad_args(kern: tuple[Any, Any]) -> None:
    ffi, lib = kern
    x = np.arange(12, dtype=np.int8)
    y = np.full(12, 99, np.int8)
    ptr = ffi.from_buffer
    p = ffi.new("te_pack_params_t *", [2, 3, 2])
    half = ffi.cast("const int8_t *", ptr("int8_t[]", x)) + 6
    assert lib.te_pack_s8(p, ptr("int8_t[]", x), half, ffi.cast("int8_t *",
                                                                ptr("int8_t[]", y))) == TE_OK
    np.testing.assert_array_equal(y, np.stack([x[:6].reshape(3, 2), x[6:].reshape(3, 2)], 1)
                                  .ravel())
    y[:] = 99
    bad = ffi.new("te_pack_params_t *", [2, 0, 2])
    assert lib.te_pack_s8(bad, ptr("int8_t[]", x), half,
                          ffi.cast("int8_t *", ptr("int8_t[]", y))) == TE_ERR_ARG
    assert lib.te_unpack_s8(p, ptr("int8_t[]", x), ffi.cast("int8_t *", ptr("int8_t[]", y)),
                            ffi.cast("int8_t *", ffi.NULL)) == TE_ERR_ARG
    assert (y == 99).all()
    d = ffi.new("te_depth_space_params_t *", [[1, 1, 1, 12], [1, 2, 2, 3], 2])
    assert lib.te_depth_to_space_s8(d, ptr("int8_t[]", x), ptr("int8_t[]", y)) == TE_OK
    assert lib.te_space_to_depth_s8(d, ptr("int8_t[]", x), ptr("int8_t[]", y)) == TE_ERR_ARG
    d.output.c = 2  # 12 channels != 2 * 2 * 2
    assert lib.te_depth_to_space_s8(d, ptr("int8_t[]", x), ptr("int8_t[]", y)) == TE_ERR_ARG
    s = ffi.new("te_depth_space_params_t *", [[1, 2, 2, 3], [1, 1, 1, 12], 2])
    assert lib.te_space_to_depth_s8(s, ptr("int8_t[]", x), ffi.NULL) == TE_ERR_ARG


# ------------------------------------------------------------------------- 3. ASan / UBSan

def test_chain_under_sanitizers(tmp_path: Path) -> None:
    from tinyengine.codegen import compile_graph

    from .sanitized import check_sanitized_demo

    g = chain_graph(qp(0.05, 3))
    compile_graph(g, tmp_path / "p", prefix="chain")
    rng = np.random.default_rng(0)
    cases = [[rng.integers(-128, 128, (1, 4, 4, 8), dtype=np.int8)] for _ in range(3)]
    check_sanitized_demo(tmp_path / "p", "chain", g, cases)


# ---------------------------------------------------------------------- 4. invalid cases

def refused(g: Graph, *fragments: str) -> None:
    with pytest.raises(UnsupportedError) as e:
        verify(g)
    for f in fragments:
        assert f in str(e.value), (f, str(e.value))


def raw_graph(kind: str, ins: dict[str, tuple[int, ...]], outs: dict[str, tuple[int, ...]],
              attrs: dict[str, Any], out_q: QuantParams | None = None) -> Graph:
    q = qp(0.1, 0)
    t = {n: Tensor(n, s, "int8", q) for n, s in ins.items()}
    t.update({n: Tensor(n, s, "int8", out_q or q) for n, s in outs.items()})
    return Graph(t, [Op("bad_op", kind, list(ins), list(outs), attrs)], list(ins), list(outs))


def test_invalid_concatenation() -> None:
    cat = "CONCATENATION"
    refused(raw_graph(cat, {"a": (1, 2, 3), "b": (1, 4, 3)}, {"y": (1, 2, 6)},
                      {"axis": 2, "activation": "NONE"}),
            "bad_op (CONCATENATION)", "input b (1, 4, 3)", "axis 2")
    refused(raw_graph(cat, {"a": (1, 2), "b": (1, 2)}, {"y": (1, 4)},
                      {"axis": 2, "activation": "NONE"}), "bad_op", "axis 2 is out of range")
    refused(raw_graph(cat, {"a": (1, 2), "b": (1, 2, 1)}, {"y": (1, 4)},
                      {"axis": 1, "activation": "NONE"}), "bad_op", "input b")
    refused(raw_graph(cat, {"a": (1, 2), "b": (1, 2)}, {"y": (1, 4)},
                      {"axis": 1, "activation": "RELU"}), "bad_op", "RELU", "only NONE")
    refused(raw_graph(cat, {"a": (1, 2), "b": (1, 2)}, {"y": (1, 4)},
                      {"axis": 1, "activation": "NONE"}, out_q=qp(0.2, 0)),
            "bad_op", "tensor a", "y", "different quantisation")


def test_invalid_pack_unpack() -> None:
    refused(raw_graph("PACK", {"a": (2, 3), "b": (3, 2)}, {"y": (2, 2, 3)}, {"axis": 1}),
            "bad_op (PACK)", "input b (3, 2)")
    refused(raw_graph("PACK", {"a": (2, 3)}, {"y": (1, 2, 3)}, {"axis": 3}),
            "bad_op (PACK)", "axis 3 is out of range")
    refused(raw_graph("UNPACK", {"x": (2, 3)}, {"a": (3,), "b": (3,), "c": (3,)}, {"axis": 0}),
            "bad_op (UNPACK)", "input x (2, 3)", "3 outputs")
    refused(raw_graph("UNPACK", {"x": (2, 3)}, {"a": (3,), "b": (3,)}, {"axis": -1}),
            "bad_op (UNPACK)", "axis -1 is out of range")
    refused(raw_graph("UNPACK", {"x": (2, 3)}, {"a": (3,), "b": (3,)}, {"axis": 0},
                      out_q=qp(0.1, 4)), "bad_op (UNPACK)", "tensor a", "x")


def test_invalid_depth_space() -> None:
    refused(raw_graph("DEPTH_TO_SPACE", {"x": (1, 2, 2, 6)}, {"y": (1, 4, 4, 1)},
                      {"block_size": 2}), "bad_op (DEPTH_TO_SPACE)", "block size 2 does not "
            "divide", "input x (1, 2, 2, 6)")
    refused(raw_graph("SPACE_TO_DEPTH", {"x": (1, 5, 4, 1)}, {"y": (1, 2, 2, 4)},
                      {"block_size": 2}), "bad_op (SPACE_TO_DEPTH)", "block size 2 does not "
            "divide", "input x (1, 5, 4, 1)")
    refused(raw_graph("SPACE_TO_DEPTH", {"x": (1, 4, 4, 1)}, {"y": (1, 4, 4, 1)},
                      {"block_size": 0}), "bad_op", "block size 0")
    refused(raw_graph("DEPTH_TO_SPACE", {"x": (4, 4, 4)}, {"y": (4, 4, 4)},
                      {"block_size": 1}), "bad_op", "input x (4, 4, 4) is not 4-D")


# --------------------------------------------------------------------------------- 5. ONNX

class _Layouts:
    def __init__(self, names: dict[str, int]) -> None:
        self.input_layouts = {n: "NCHW" for n, r in names.items() if r == 4}
        self.output_layouts = dict(self.input_layouts)
        self.source = "test"


def onnx_exact(path: Path, calib: np.ndarray, tmp_path: Path) -> tuple[Any, Graph]:
    """Quantise and compile an ONNX file; C == reference == TFLM on the int8 graph, and the
    QDQ export, run by onnxruntime, gives the same int8 outputs (data movement is exact)."""
    from tinyengine.convert import quantize_onnx
    from tinyengine.quantize.qdq import compare_with_onnxruntime, qdq_model

    model, graph = quantize_onnx(path, calib)
    assert_exact(graph, seed=0, n_random=3)
    samples = [c[None] for c in calib[:4]]
    agreement = compare_with_onnxruntime(graph, model, qdq_model(graph, model), samples,
                                         optimized=False)
    assert agreement.identical == 1.0, agreement
    return model, graph


def test_torch_cat_axes(tmp_path: Path) -> None:
    import torch
    from torch import nn

    from tinyengine.convert import export_torch

    class Cats(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pool = nn.MaxPool2d(3, 1, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a = self.pool(x)
            c = torch.cat([x, a, x], 1)  # channels: IR axis 3
            h = torch.cat([c, self.pool(c)], 2)  # height: IR axis 1
            return torch.cat([self.pool(h), h], 3)  # width: IR axis 2

    calib = np.random.default_rng(0).normal(0, 1, (6, 2, 4, 3)).astype(np.float32)
    path = export_torch(Cats(), torch.from_numpy(calib[:1]), tmp_path / "cat.onnx")
    _, graph = onnx_exact(path, calib, tmp_path)
    cats = [op.attrs["axis"] for op in graph.ops if op.kind == "CONCATENATION"]
    assert cats == [3, 1, 2]


def depth_space_onnx(path: Path, op_type: str, in_shape: tuple[int, ...],
                     out_shape: tuple[int, ...], **attrs: Any) -> Path:
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node(op_type, ["input"], ["output"], name="ds", **attrs)
    g = helper.make_graph([node], "ds",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT,
                                                         out_shape)])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_onnx_depth_to_space_and_space_to_depth(tmp_path: Path) -> None:
    import onnxruntime as ort

    rng = np.random.default_rng(1)
    cases = [("DepthToSpace", (1, 12, 2, 3), (1, 3, 4, 6), {"blocksize": 2, "mode": "DCR"}),
             ("DepthToSpace", (1, 9, 2, 2), (1, 1, 6, 6), {"blocksize": 3, "mode": "CRD"}),
             ("SpaceToDepth", (1, 3, 4, 6), (1, 12, 2, 3), {"blocksize": 2})]
    for k, (op_type, ins, outs, attrs) in enumerate(cases):
        path = depth_space_onnx(tmp_path / f"ds{k}.onnx", op_type, ins, outs, **attrs)
        calib = rng.normal(0, 1, (6, *ins[1:])).astype(np.float32)
        model, graph = onnx_exact(path, calib, tmp_path)
        # Against the float model: within half a step of the output quantisation.
        from tinyengine.quantize.qdq import _output_quant

        q = _output_quant(graph)["output"]
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        x = calib[:1]
        want = sess.run(None, {"input": x})[0]
        got = run_reference(graph, [x.transpose(0, 2, 3, 1)])[0].transpose(0, 3, 1, 2)
        assert np.abs(got - want).max() <= float(q.scale[0]) * 0.51


def test_onnx_depth_to_space_crd_refused(tmp_path: Path) -> None:
    from tinyengine.frontend.onnx_reader import load_onnx

    path = depth_space_onnx(tmp_path / "crd.onnx", "DepthToSpace", (1, 8, 2, 2), (1, 2, 4, 4),
                            blocksize=2, mode="CRD")
    with pytest.raises(UnsupportedError, match="mode CRD"):
        load_onnx(path)


def test_qdq_export_of_pack_and_unpack() -> None:
    """PACK/UNPACK come from TFLite only, but their QDQ form must still be the same copy."""
    from tinyengine.quantize.qdq import compare_with_onnxruntime, qdq_model

    q = qp(0.05, -3)
    t = {"x": Tensor("x", (1, 3, 2, 4), "float32"), "xq": Tensor("xq", (1, 3, 2, 4), "int8", q)}
    for i in range(3):
        t[f"u{i}"] = Tensor(f"u{i}", (1, 2, 4), "int8", q)
    t["k"] = Tensor("k", (1, 2, 4, 3), "int8", q)
    t["y"] = Tensor("y", (1, 2, 4, 3), "float32")
    t["u1f"] = Tensor("u1f", (1, 2, 4), "float32")
    ops = [Op("q", "QUANTIZE", ["x"], ["xq"]),
           Op("unpack", "UNPACK", ["xq"], ["u0", "u1", "u2"], {"axis": 1}),
           Op("pack", "PACK", ["u2", "u0", "u1"], ["k"], {"axis": 3}),
           Op("dq", "DEQUANTIZE", ["k"], ["y"]), Op("dq1", "DEQUANTIZE", ["u1"], ["u1f"])]
    g = Graph(t, ops, ["x"], ["y", "u1f"])
    verify(g)
    layouts = _Layouts({"x": 4, "y": 4})
    x = np.random.default_rng(2).normal(0, 0.2, (4, 1, 4, 3, 2)).astype(np.float32)
    agreement = compare_with_onnxruntime(g, layouts, qdq_model(g, layouts), list(x),
                                         optimized=False)
    assert agreement.identical == 1.0 and agreement.values == 4 * (24 + 8), agreement


def test_negative_tflite_axes_are_normalised() -> None:
    """TFLite files may count axes from the end; the IR holds them non-negative."""
    q = qp(0.1, 2)
    cases = [(one_op("CONCATENATION", [(2, 3, 1), (2, 3, 2)], {"axis": 2, "activation": "NONE"},
                     q), -1),
             (one_op("PACK", [(2, 3)] * 2, {"axis": 1}, q), -2),
             (one_op("UNPACK", [(2, 3)], {"axis": 0}, q, n_out=2), -2)]
    for g, negative in cases:
        axis = g.ops[0].attrs["axis"]
        g.ops[0].attrs["axis"] = negative
        back = parse_tflite(write_tflite(g))
        assert back.ops[0].attrs["axis"] == axis
        x = [np.arange(t.size, dtype=np.int8).reshape(t.shape)
             for t in (g.tensor(n) for n in g.inputs)]
        from tinyengine.tflm import run_tflm

        for want, got in zip(run_reference(back, x), run_tflm(write_tflite(g), x)):
            np.testing.assert_array_equal(want, got)
