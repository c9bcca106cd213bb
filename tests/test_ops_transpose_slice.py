"""TRANSPOSE, STRIDED_SLICE, SLICE, SQUEEZE, EXPAND_DIMS, SPLIT and SPLIT_V: int8 data movement.

Evidence, layer by layer:
1. seeded random one-op and small multi-op IR graphs, written to .tflite and run three ways:
   the generated C on the host, the numpy reference and the TFLM interpreter, bit for bit
   (verify_graph); the same graphs read back through the TFLite reader give the same ops;
2. a naive transcription of TFLM's 5-D StridedSlice loop against the reference, on many random
   masks and strides (cheap: no compiler);
3. the C kernels refuse parameters outside their domain (TE_ERR_ARG), and one project holding
   every op runs clean under ASan/UBSan;
4. invalid graphs are refused by ir.verify with the op and the tensor named;
5. ONNX: a torch module exported and imported; every IR tensor of our ops equals onnxruntime's
   float value exactly (the ops only move values, so their reference runs on floats too), the
   quantised graph is bit-exact C == reference == TFLM, and the QDQ export agrees with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinyengine.errors import TinyEngineError, UnsupportedError
from tinyengine.frontend.tflite_reader import parse_tflite
from tinyengine.frontend.tflite_writer import write_tflite
from tinyengine.inputs import random_inputs
from tinyengine.ir import Graph, Op, QuantParams, Tensor, verify
from tinyengine.ops import get_op
from tinyengine.reference import run_reference
from tinyengine.verify import verify_graph

from . import ckernels
from .sanitized import check_sanitized_demo

TE_OK, TE_ERR_ARG = 0, 1


def qp(scale: float, zp: int) -> QuantParams:
    return QuantParams(np.array([scale], np.float32), np.array([zp], np.int64))


def rand_q(rng: np.random.Generator) -> QuantParams:
    return qp(float(rng.uniform(0.005, 0.2)), int(rng.integers(-128, 128)))


class GraphBuilder:
    """A graph grown op by op: every output takes its op's inferred shape and its input's
    quantisation (as these ops require)."""

    def __init__(self, shape: tuple[int, ...], q: QuantParams) -> None:
        self.tensors = {"x": Tensor("x", shape, "int8", q)}
        self.ops: list[Op] = []

    def add(self, kind: str, x: str, attrs: dict[str, Any], n_out: int = 1,
            shape: tuple[int, ...] = (1,)) -> list[str]:
        """`shape`: the output's, for SLICE (whose size is its output's shape)."""
        outs = [f"t{len(self.tensors) + i}" for i in range(n_out)]
        for o in outs:
            self.tensors[o] = Tensor(o, shape, "int8", self.tensors[x].quant)
        op = Op(f"op{len(self.ops)}", kind, [x], outs, attrs)
        g = Graph(self.tensors, self.ops + [op], ["x"], [])
        get_op(kind).check(g, op)
        for o, shape in zip(outs, get_op(kind).infer_shapes(g, op)):
            self.tensors[o].shape = tuple(shape)
        self.ops.append(op)
        return outs

    def graph(self, outputs: list[str]) -> Graph:
        g = Graph(dict(self.tensors), list(self.ops), ["x"], outputs)
        verify(g)
        return g


def assert_exact_everywhere(g: Graph, seed: int, n_random: int = 4) -> None:
    """C == reference == TFLM on random inputs; and the .tflite reads back as the same graph."""
    tfl = write_tflite(g)
    verdicts, _ = verify_graph(g, tfl, n_random=n_random, seed=seed)
    assert all(v.exact and v.max_diff_tflm is not None for v in verdicts), \
        [v.line(0) for v in verdicts]
    back = parse_tflite(tfl)
    assert [op.kind for op in back.ops] == [op.kind for op in g.ops]
    x = random_inputs(g, np.random.default_rng(seed))
    for a, b in zip(run_reference(back, x), run_reference(g, x), strict=True):
        np.testing.assert_array_equal(a, b)


def rand_shape(rng: np.random.Generator, rank: int, hi: int = 6) -> tuple[int, ...]:
    return tuple(int(d) for d in rng.integers(1, hi + 1, size=rank))


# ----------------------------------------------------------------------------------- TRANSPOSE

@pytest.mark.parametrize("seed", range(8))
def test_transpose_random_matches_tflm(tflm: Any, seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    rank = int(rng.integers(1, 6))
    b = GraphBuilder(rand_shape(rng, rank), rand_q(rng))
    (y,) = b.add("TRANSPOSE", "x", {"perm": tuple(int(p) for p in rng.permutation(rank))})
    assert_exact_everywhere(b.graph([y]), seed)


def test_transpose_nchw_round_trip_is_identity(tflm: Any) -> None:
    b = GraphBuilder((1, 4, 5, 3), qp(0.02, -7))
    (t,) = b.add("TRANSPOSE", "x", {"perm": (0, 3, 1, 2)})
    (y,) = b.add("TRANSPOSE", t, {"perm": (0, 2, 3, 1)})
    g = b.graph([y, t])
    x = random_inputs(g, np.random.default_rng(0))
    np.testing.assert_array_equal(run_reference(g, x)[0], x[0])
    assert_exact_everywhere(g, 0)


# ------------------------------------------------------------------------------- STRIDED_SLICE

def random_strided_slice(rng: np.random.Generator, shape: tuple[int, ...]) -> dict[str, Any]:
    """Begin/end anywhere in [-n - 2, n + 2], strides of either sign, random masks; resampled
    until the op accepts it."""
    rank = len(shape)
    while True:
        attrs = {"begin": tuple(int(rng.integers(-n - 2, n + 3)) for n in shape),
                 "end": tuple(int(rng.integers(-n - 2, n + 3)) for n in shape),
                 "strides": tuple(int(rng.choice([-3, -2, -1, 1, 1, 2, 3])) for _ in shape),
                 "begin_mask": int(rng.integers(0, 1 << rank)),
                 "end_mask": int(rng.integers(0, 1 << rank)),
                 "shrink_axis_mask": int(rng.integers(0, 1 << rank)) & int(rng.integers(0, 16))}
        tensors = {"x": Tensor("x", shape, "int8", qp(0.1, 0)),
                   "y": Tensor("y", (1,), "int8", qp(0.1, 0))}
        op = Op("ss", "STRIDED_SLICE", ["x"], ["y"], attrs)
        try:
            get_op("STRIDED_SLICE").check(Graph(tensors, [op], ["x"], ["y"]), op)
        except UnsupportedError:
            continue
        return attrs


@pytest.mark.parametrize("seed", range(12))
def test_strided_slice_random_matches_tflm(tflm: Any, seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    shape = rand_shape(rng, int(rng.integers(1, 5)), hi=7)
    b = GraphBuilder(shape, rand_q(rng))
    (y,) = b.add("STRIDED_SLICE", "x", random_strided_slice(rng, shape))
    assert_exact_everywhere(b.graph([y]), seed)


def naive_tflm_strided_slice(x: np.ndarray, attrs: dict[str, Any]) -> np.ndarray:
    """reference_ops::StridedSlice as TFLM runs it: indices padded to 5-D at the front (begin 0,
    end 1, stride 1, both masks set there), StridedSliceStartForAxis/EndForAxis, then five
    nested loops writing sequentially."""
    pad = 5 - x.ndim
    shape = (1,) * pad + x.shape
    begin = [0] * pad + list(attrs["begin"])
    end = [1] * pad + list(attrs["end"])
    strides = [1] * pad + list(attrs["strides"])
    bm = attrs["begin_mask"] << pad | ((1 << pad) - 1)
    em = attrs["end_mask"] << pad | ((1 << pad) - 1)
    sm = attrs["shrink_axis_mask"] << pad

    def clamp(v: int, lo: int, hi: int) -> int:
        return hi if v > hi else lo if v < lo else v

    starts, stops = [], []
    for k in range(5):
        n, s = shape[k], strides[k]
        start = begin[k] + n if begin[k] < 0 else begin[k]
        start = clamp(start, 0, n) if s > 0 else clamp(start, -1, n - 1)
        if bm >> k & 1:
            start = 0 if s > 0 else n - 1
        if sm >> k & 1:
            stop = start if start >= n else start + 1
        else:
            stop = end[k] + n if end[k] < 0 else end[k]
            stop = clamp(stop, 0, n) if s > 0 else clamp(stop, -1, n - 1)
            if em >> k & 1:
                stop = n if s > 0 else -1
        starts.append(start)
        stops.append(stop)

    flat = x.ravel()
    out: list[int] = []

    def walk(k: int, index: int) -> None:
        if k == 5:
            out.append(int(flat[index]))
            return
        i = starts[k]
        while (i < stops[k]) if strides[k] > 0 else (i > stops[k]):
            walk(k + 1, index * shape[k] + i)
            i += strides[k]

    walk(0, 0)
    return np.array(out, np.int8)


def test_strided_slice_reference_matches_naive_tflm_loop() -> None:
    rng = np.random.default_rng(7)
    for _ in range(300):
        shape = rand_shape(rng, int(rng.integers(1, 5)), hi=6)
        attrs = random_strided_slice(rng, shape)
        b = GraphBuilder(shape, qp(0.1, 0))
        (y,) = b.add("STRIDED_SLICE", "x", attrs)
        g = b.graph([y])
        x = rng.integers(-128, 128, size=shape, dtype=np.int8)
        (got,) = get_op("STRIDED_SLICE").reference(g, g.ops[0], [x])
        np.testing.assert_array_equal(got.ravel(), naive_tflm_strided_slice(x, attrs))


def test_strided_slice_masks_by_hand() -> None:
    x = np.arange(24, dtype=np.int8).reshape(4, 6)
    b = GraphBuilder((4, 6), qp(0.1, 0))
    (y,) = b.add("STRIDED_SLICE", "x", {"begin": (-1, 5), "end": (0, 0), "strides": (1, -2),
                                        "begin_mask": 0, "end_mask": 2, "shrink_axis_mask": 1})
    g = b.graph([y])
    # Row 3 (begin -1, shrunk), columns 5, 3, 1 (end_mask with a negative stride: to the start).
    np.testing.assert_array_equal(run_reference(g, [x])[0], [23, 21, 19])


# ----------------------------------------------------------------------- SLICE, SQUEEZE, EXPAND

def slice_graph(rng: np.random.Generator, rank: int) -> Graph:
    shape = rand_shape(rng, rank, hi=6)
    size = tuple(int(rng.integers(1, n + 1)) for n in shape)
    begin = tuple(int(rng.integers(0, n - s + 1)) for n, s in zip(shape, size))
    q = rand_q(rng)
    tensors = {"x": Tensor("x", shape, "int8", q), "y": Tensor("y", size, "int8", q)}
    g = Graph(tensors, [Op("slice", "SLICE", ["x"], ["y"], {"begin": begin})], ["x"], ["y"])
    verify(g)
    return g


@pytest.mark.parametrize("seed", range(6))
def test_slice_random_matches_tflm(tflm: Any, seed: int) -> None:
    rng = np.random.default_rng(300 + seed)
    assert_exact_everywhere(slice_graph(rng, 1 + seed % 5), seed)


def test_squeeze_and_expand_dims_match_tflm(tflm: Any) -> None:
    b = GraphBuilder((1, 5, 1, 3), qp(0.03, 11))
    (a,) = b.add("SQUEEZE", "x", {"axes": (-2,)})
    (c,) = b.add("SQUEEZE", "x", {"axes": ()})
    (d,) = b.add("EXPAND_DIMS", c, {"axis": -1})
    (e,) = b.add("EXPAND_DIMS", a, {"axis": 0})
    g = b.graph([a, c, d, e])
    assert [g.tensor(n).shape for n in (a, c, d, e)] == [(1, 5, 3), (5, 3), (5, 3, 1),
                                                         (1, 1, 5, 3)]
    assert get_op("SQUEEZE").is_view and get_op("EXPAND_DIMS").is_view
    assert_exact_everywhere(g, 1)


# -------------------------------------------------------------------------------------- SPLIT

@pytest.mark.parametrize("seed", range(6))
def test_split_and_split_v_random_match_tflm(tflm: Any, seed: int) -> None:
    rng = np.random.default_rng(400 + seed)
    rank = int(rng.integers(1, 5))
    axis = int(rng.integers(0, rank))
    n_out = int(rng.integers(1, 9))
    shape = list(rand_shape(rng, rank, hi=4))
    b = GraphBuilder(tuple(shape), rand_q(rng))
    if seed % 2:
        shape[axis] = n_out * int(rng.integers(1, 3))
        b = GraphBuilder(tuple(shape), rand_q(rng))
        outs = b.add("SPLIT", "x", {"axis": axis - rank * int(rng.integers(0, 2))}, n_out)
    else:
        sizes = tuple(int(s) for s in rng.integers(1, 4, size=n_out))
        shape[axis] = sum(sizes)
        b = GraphBuilder(tuple(shape), rand_q(rng))
        outs = b.add("SPLIT_V", "x", {"axis": axis, "sizes": sizes}, n_out)
    assert_exact_everywhere(b.graph(outs), seed, n_random=3)


@pytest.mark.parametrize("seed", range(2))
def test_chain_of_every_op_matches_tflm(tflm: Any, seed: int) -> None:
    rng = np.random.default_rng(500 + seed)
    b = GraphBuilder((1, 6, 5, 4), rand_q(rng))
    (t,) = b.add("TRANSPOSE", "x", {"perm": (0, 3, 1, 2)})  # (1, 4, 6, 5)
    (s,) = b.add("STRIDED_SLICE", t, {"begin": (0, 0, -1, 1), "end": (1, 4, 0, 5),
                                      "strides": (1, 1, -2, 1), "begin_mask": 0, "end_mask": 4,
                                      "shrink_axis_mask": 1})  # (4, 3, 4)
    p0, p1 = b.add("SPLIT_V", s, {"axis": -1, "sizes": (1, 3)}, 2)
    (q,) = b.add("SQUEEZE", p0, {"axes": (2,)})
    (r,) = b.add("SLICE", p1, {"begin": (1, 0, 1)}, shape=(3, 2, 2))
    (e,) = b.add("EXPAND_DIMS", r, {"axis": 0})
    h0, h1 = b.add("SPLIT", q, {"axis": 0}, 2)
    assert_exact_everywhere(b.graph([h0, h1, e]), seed)


# --------------------------------------------------------------------- C domains and sanitizers

def test_kernels_refuse_parameters_outside_their_domain() -> None:
    ffi, lib = ckernels.build(
        ["te_transpose.h", "te_strided_slice.h", "te_slice.h", "te_split.h"],
        ["te_transpose.c", "te_strided_slice.c", "te_slice.c", "te_split.c"],
        """
        typedef enum { TE_OK = 0, TE_ERR_ARG = 1, TE_ERR_SCRATCH = 2 } te_status_t;
        typedef struct { int32_t count[5]; int32_t step[5]; int32_t input_size; }
            te_transpose_params_t;
        te_status_t te_transpose_s8(const te_transpose_params_t *, const int8_t *, int8_t *);
        typedef struct { int32_t count[5]; int32_t step[5]; int32_t offset; int32_t input_size; }
            te_strided_slice_params_t;
        te_status_t te_strided_slice_s8(const te_strided_slice_params_t *, const int8_t *,
                                        int8_t *);
        typedef struct { int32_t count[5]; int32_t step[5]; int32_t offset; int32_t whole_size;
                         int32_t elem_bytes; } te_slice_params_t;
        te_status_t te_slice(const te_slice_params_t *, const void *, void *);
        typedef struct { int32_t outer; int32_t num_outputs; int32_t chunk[8]; }
            te_split_params_t;
        te_status_t te_split_s8(const te_split_params_t *, const int8_t *, int8_t *, int8_t *,
                                int8_t *, int8_t *, int8_t *, int8_t *, int8_t *, int8_t *);
        """)
    x = np.arange(24, dtype=np.int8)
    y = np.zeros(24, np.int8)
    px, py = ffi.from_buffer("int8_t[]", x), ffi.from_buffer("int8_t[]", y)
    n = ffi.NULL
    # A transpose of (4, 6) is fine; one step too far reads past the input.
    tp = ffi.new("te_transpose_params_t *", {"count": [1, 1, 1, 6, 4], "step": [0, 0, 0, 1, 6],
                                            "input_size": 24})
    assert lib.te_transpose_s8(tp, px, py) == TE_OK
    np.testing.assert_array_equal(y, x.reshape(4, 6).T.ravel())
    tp.step[3] = 2
    assert lib.te_transpose_s8(tp, px, py) == TE_ERR_ARG
    tp.step[3] = 1
    assert lib.te_transpose_s8(tp, px, px) == TE_ERR_ARG  # in place is not allowed
    # A reversed walk must stay at or above element 0.
    sp = ffi.new("te_strided_slice_params_t *", {"count": [1, 1, 1, 1, 5], "step": [0, 0, 0, 0, -3],
                                                "offset": 12, "input_size": 24})
    assert lib.te_strided_slice_s8(sp, px, py) == TE_OK
    np.testing.assert_array_equal(y[:5], [12, 9, 6, 3, 0])
    sp.offset = 11
    assert lib.te_strided_slice_s8(sp, px, py) == TE_ERR_ARG
    bp = ffi.new("te_slice_params_t *", {"count": [1, 1, 1, 2, 3], "step": [0, 0, 0, 6, 1],
                                        "offset": 20, "whole_size": 24, "elem_bytes": 1})
    assert lib.te_slice(bp, px, py) == TE_ERR_ARG  # the second row would end at element 29
    bp.offset = 15
    assert lib.te_slice(bp, px, py) == TE_OK
    np.testing.assert_array_equal(y[:6], [15, 16, 17, 21, 22, 23])
    bp.step[4] = 2
    assert lib.te_slice(bp, px, py) == TE_ERR_ARG  # rows must be contiguous
    sp2 = ffi.new("te_split_params_t *", {"outer": 2, "num_outputs": 2, "chunk": [4, 8]})
    a, c = np.zeros(8, np.int8), np.zeros(16, np.int8)
    pa, pc = ffi.from_buffer("int8_t[]", a), ffi.from_buffer("int8_t[]", c)
    assert lib.te_split_s8(sp2, px, pa, pc, n, n, n, n, n, n) == TE_OK
    np.testing.assert_array_equal(a, np.r_[0:4, 12:16])
    np.testing.assert_array_equal(c, np.r_[4:12, 16:24])
    assert lib.te_split_s8(sp2, px, pa, n, n, n, n, n, n, n) == TE_ERR_ARG
    sp2.num_outputs = 9
    assert lib.te_split_s8(sp2, px, pa, pc, n, n, n, n, n, n) == TE_ERR_ARG


def test_every_op_clean_under_sanitizers(tmp_path: Path) -> None:
    from tinyengine.codegen import compile_graph

    rng = np.random.default_rng(9)
    b = GraphBuilder((2, 5, 4, 3), rand_q(rng))
    (t,) = b.add("TRANSPOSE", "x", {"perm": (3, 1, 0, 2)})  # (3, 5, 2, 4)
    (s,) = b.add("STRIDED_SLICE", t, {"begin": (2, 4, 0, -1), "end": (0, 0, 2, 0),
                                      "strides": (-1, -2, 1, -1), "begin_mask": 0,
                                      "end_mask": 8, "shrink_axis_mask": 0})
    (c,) = b.add("SLICE", "x", {"begin": (1, 1, 0, 1)}, shape=(1, 3, 4, 2))
    (q,) = b.add("SQUEEZE", c, {"axes": (0,)})
    (e,) = b.add("EXPAND_DIMS", q, {"axis": 2})
    p0, p1, p2 = b.add("SPLIT_V", "x", {"axis": 2, "sizes": (1, 2, 1)}, 3)
    h0, h1, h2 = b.add("SPLIT", t, {"axis": 0}, 3)
    g = b.graph([s, e, p0, p1, p2, h0, h1, h2])
    compile_graph(g, tmp_path / "p", prefix="m", patch="off")
    check_sanitized_demo(tmp_path / "p", "m", g, [random_inputs(g, rng) for _ in range(3)])


# ------------------------------------------------------------------------------- invalid cases

def refused(g: Graph, *words: str) -> None:
    with pytest.raises(UnsupportedError) as e:
        verify(g)
    for w in words:
        assert w in str(e.value), str(e.value)


def one_op(kind: str, shape: tuple[int, ...], attrs: dict[str, Any],
           out_shapes: list[tuple[int, ...]], out_q: QuantParams | None = None) -> Graph:
    q = qp(0.1, 2)
    tensors = {"x": Tensor("x", shape, "int8", q)}
    outs = [f"y{i}" for i in range(len(out_shapes))]
    for o, s in zip(outs, out_shapes):
        tensors[o] = Tensor(o, s, "int8", out_q or q)
    return Graph(tensors, [Op("bad_op", kind, ["x"], outs, attrs)], ["x"], outs)


def test_invalid_graphs_are_refused_naming_op_and_tensor() -> None:
    refused(one_op("TRANSPOSE", (2, 3, 4), {"perm": (0, 1, 1)}, [(2, 3, 3)]),
            "bad_op", "TRANSPOSE", "perm", "not a permutation", "x")
    refused(one_op("TRANSPOSE", (1,) * 6, {"perm": tuple(range(6))}, [(1,) * 6]),
            "bad_op", "rank 6")
    refused(one_op("TRANSPOSE", (2, 3), {"perm": (1, 0)}, [(3, 2)], qp(0.2, 2)),
            "bad_op", "x", "y0", "share")
    refused(one_op("SLICE", (4, 5), {"begin": (3, 0)}, [(2, 5)]),
            "bad_op", "SLICE", "begin 3", "axis 0", "out of range", "x")
    refused(one_op("SLICE", (4, 5), {"begin": (-1, 0)}, [(1, 5)]), "bad_op", "begin -1")
    ss = {"begin": (0, 0), "end": (2, 2), "strides": (1, 0), "begin_mask": 0, "end_mask": 0,
          "shrink_axis_mask": 0}
    refused(one_op("STRIDED_SLICE", (4, 5), ss, [(2, 2)]), "bad_op", "strides", "non-zero", "x")
    refused(one_op("STRIDED_SLICE", (4, 5), dict(ss, strides=(1, 1), ellipsis_mask=1), [(2, 2)]),
            "bad_op", "ellipsis_mask")
    refused(one_op("STRIDED_SLICE", (4, 5), dict(ss, begin=(4, 0), strides=(1, 1),
                                                 shrink_axis_mask=1), [(2,)]),
            "bad_op", "begin 4", "axis 0", "out of range", "x")
    refused(one_op("STRIDED_SLICE", (4, 5), dict(ss, begin=(3, 0), end=(1, 2), strides=(1, 1)),
                   [(1, 2)]), "bad_op", "no element", "axis 0")
    refused(one_op("STRIDED_SLICE", (2,) * 5, {"begin": (0,) * 5, "end": (1,) * 5,
                                               "strides": (1,) * 5}, [(1,) * 5]),
            "bad_op", "rank 5")
    refused(one_op("SPLIT_V", (4, 6), {"axis": 1, "sizes": (2, 3)}, [(4, 2), (4, 3)]),
            "bad_op", "SPLIT_V", "sizes [2, 3]", "sum to 6", "x")
    refused(one_op("SPLIT", (4, 6), {"axis": 1}, [(4, 2)] * 4), "bad_op", "6 elements",
            "4 equal pieces")
    refused(one_op("SPLIT", (4, 6), {"axis": 2}, [(4, 3)] * 2), "bad_op", "axis 2", "x")
    refused(one_op("SPLIT", (18,), {"axis": 0}, [(2,)] * 9), "bad_op", "9 outputs")
    refused(one_op("SQUEEZE", (1, 5), {"axes": (1,)}, [(1,)]), "bad_op", "axis 1", "size 1", "x")
    refused(one_op("EXPAND_DIMS", (1, 5), {"axis": 3}, [(1, 5, 1)]), "bad_op", "axis 3")


def test_tflite_import_refuses_ellipsis_and_new_axis(tflm: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    g = one_op("STRIDED_SLICE", (4, 5), {"begin": (0, 0), "end": (2, 2), "strides": (1, 1)},
               [(2, 2)])
    verify(g)
    op = get_op("STRIDED_SLICE")
    original = op.to_tflite

    def with_new_axis(fbm: Any, graph: Graph, o: Op) -> Any:
        low = original(fbm, graph, o)
        low.options.newAxisMask = 1
        return low

    monkeypatch.setattr(op, "to_tflite", with_new_axis)
    tfl = write_tflite(g)
    with pytest.raises(TinyEngineError, match="new_axis_mask"):
        parse_tflite(tfl)


# ------------------------------------------------------------------------------------- ONNX

def _torch_model() -> Any:
    import torch
    from torch import nn

    class Moves(nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            a, b = torch.split(x, [1, 3], dim=1)
            t = b.permute(0, 2, 3, 1)  # NHWC in ONNX
            s = torch.flip(b[:, :, 1:5:2, 2:], [3])
            return t, s, a, *torch.split(x, 2, dim=3)

    return Moves()


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
def test_onnx_transpose_slice_split(tflm: Any, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from tinyengine.convert import compile_onnx, export_torch, quantize_onnx
    from tinyengine.frontend.onnx_reader import float_activations, load_onnx
    from tinyengine.quantize.qdq import compare_with_onnxruntime, qdq_model

    rng = np.random.default_rng(0)
    path = export_torch(_torch_model(), torch.zeros(1, 4, 6, 4), tmp_path / "m.onnx")
    model = load_onnx(path)
    kinds = {op.kind for op in model.graph.ops}
    assert {"TRANSPOSE", "STRIDED_SLICE", "SLICE", "SPLIT", "SPLIT_V"} <= kinds, kinds
    # Semantics: each op's reference, run on onnxruntime's float inputs, gives onnxruntime's
    # float outputs exactly (these ops move values, whatever their type).
    x = rng.standard_normal((1, 4, 6, 4)).astype(np.float32)
    acts = float_activations(model, [x])
    for op in model.graph.ops:
        ys = get_op(op.kind).reference(model.graph, op, [acts[op.inputs[0]]])
        for name, y in zip(op.outputs, ys):
            np.testing.assert_array_equal(y, acts[name], err_msg=f"{op.name} ({op.kind})")
    calib = [rng.standard_normal((16, 4, 6, 4)).astype(np.float32)]
    fm, g = quantize_onnx(path, calib)
    for op in g.ops:  # input and outputs share quantisation
        if op.kind not in ("QUANTIZE", "DEQUANTIZE"):
            assert {(g.tensor(n).scale, g.tensor(n).zero_point)
                    for n in op.inputs + op.outputs} == \
                {(g.tensor(op.inputs[0]).scale, g.tensor(op.inputs[0]).zero_point)}
    verdicts, _ = verify_graph(g, write_tflite(g), n_random=3, seed=0)
    assert all(v.exact for v in verdicts), [v.line(0) for v in verdicts]
    # The QDQ export moves the same values: only QuantizeLinear's ties may round differently.
    agreement = compare_with_onnxruntime(g, fm, qdq_model(g, fm), [x], optimized=False)
    assert agreement.max_abs_diff <= 1 and agreement.identical > 0.99, agreement
    report = compile_onnx(path, tmp_path / "c", calib)
    assert (tmp_path / "c" / "model_qdq.onnx").is_file() and report["arena_bytes"] > 0


def test_onnx_split_sizes_that_do_not_sum_are_refused(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    from tinyengine.frontend.onnx_reader import load_onnx

    node = helper.make_node("Split", ["x", "s"], ["a", "b"], axis=1, name="bad_split")
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6])],
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 2]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 3])],
        initializer=[helper.make_tensor("s", TensorProto.INT64, [2], [2, 3])])
    path = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(TinyEngineError, match="bad_split.*split sizes \\[2, 3\\].*sum to 6"):
        load_onnx(path)


def test_qdq_export_of_views_and_shrinking_slices() -> None:
    """SQUEEZE, EXPAND_DIMS and a shrinking STRIDED_SLICE have no ONNX source; their QDQ form
    (Reshape / Slice between layout transposes) must still move the values as the reference."""
    from types import SimpleNamespace

    from tinyengine.quantize.qdq import compare_with_onnxruntime, qdq_model

    q = qp(0.05, -3)
    b = GraphBuilder((1,), q)
    b.tensors.update(x=Tensor("x", (1, 5, 1, 3), "float32"),
                     xq=Tensor("xq", (1, 5, 1, 3), "int8", q), y=Tensor("y", (1,), "float32"))
    b.ops = [Op("quant", "QUANTIZE", ["x"], ["xq"], {})]
    (s,) = b.add("SQUEEZE", "xq", {"axes": (2,)})  # (1, 5, 3)
    (e,) = b.add("EXPAND_DIMS", s, {"axis": 3})  # (1, 5, 3, 1)
    (t,) = b.add("STRIDED_SLICE", e, {"begin": (0, 4, 0, 0), "end": (1, 0, 3, 1),
                                      "strides": (1, -2, 1, 1), "begin_mask": 0, "end_mask": 0,
                                      "shrink_axis_mask": 9})  # (2, 3)
    b.tensors["y"].shape = b.tensors[t].shape
    b.ops.append(Op("dequant", "DEQUANTIZE", [t], ["y"], {}))
    g = Graph(dict(b.tensors), list(b.ops), ["x"], ["y"])
    verify(g)
    layouts = SimpleNamespace(input_layouts={}, output_layouts={}, source="test")
    x = np.random.default_rng(3).uniform(-6, 6, (1, 5, 1, 3)).astype(np.float32)
    agreement = compare_with_onnxruntime(g, layouts, qdq_model(g, layouts), [x],
                                         optimized=False)
    assert agreement.values == 6 and agreement.max_abs_diff == 0, agreement
