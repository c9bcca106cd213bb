"""The data-movement ops on int16 activations (TFLite's 16x8 mode): CONCATENATION, PAD,
STRIDED_SLICE, SLICE, RESHAPE, TRANSPOSE, SQUEEZE, EXPAND_DIMS, SPLIT, SPLIT_V, PACK, UNPACK.

Evidence, layer by layer:
1. seeded random one-op int16 graphs, written to .tflite and run three ways (the generated C on
   the host, the numpy reference, TFLM's interpreter), bit for bit; the file reads back as the
   same ops. Inputs span the whole int16 range, so a kernel that moved single bytes, or
   sign-extended an int8, would differ;
2. the int16 rules where TFLM's int16 path differs from its int8 one: PAD pads int16 with 0,
   not the output zero point; CONCATENATION's int16 Prepare asks only for zero points 0 (we
   also ask for one scale, a byte copy cannot requantise); DEPTH_TO_SPACE has no int16 path;
3. concatenation and split views (memory/inplace.py) at byte offsets of 2-byte elements;
4. the C entry points called directly: `_s16` kernels refuse what they cannot run;
5. one project holding every op, built under ASan/UBSan, and the kernels it calls are the
   `kernel` hooks' names;
6. the two SEANet models with these ops: bit-exact with TFLM on 20 inputs, arena <= TFLM's head.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinyengine.codegen import compile_graph
from tinyengine.errors import UnsupportedError
from tinyengine.frontend.tflite_reader import parse_tflite
from tinyengine.frontend.tflite_writer import write_tflite
from tinyengine.inputs import random_inputs
from tinyengine.ir import Graph, Op, QuantParams, Tensor, verify
from tinyengine.memory.schedule import schedule
from tinyengine.ops import get_op
from tinyengine.reference import run_reference
from tinyengine.verify import verify_graph, verify_model

from . import ckernels
from .sanitized import check_sanitized_demo
from .test_schedule_invariants import check_schedule

TE_OK, TE_ERR_ARG = 0, 1
KINDS = ("CONCATENATION", "PAD", "STRIDED_SLICE", "SLICE", "RESHAPE", "TRANSPOSE", "SQUEEZE",
         "EXPAND_DIMS", "SPLIT", "SPLIT_V", "PACK", "UNPACK")
# TFLM's head (activations) for the SEANet single-op models, from ../shared/models/MANIFEST.md.
SEANET_HEAD = {"tflm_seanet_pad0.tflite": 2608, "tflm_seanet_strided_slice0.tflite": 9296}


def qp(scale: float, zp: int = 0) -> QuantParams:
    return QuantParams(np.array([scale], np.float32), np.array([zp], np.int64))


def one_op(kind: str, ins: list[tuple[int, ...]], attrs: dict[str, Any], q: QuantParams,
           n_out: int = 1, out_shape: tuple[int, ...] | None = None,
           dtype: str = "int16") -> Graph:
    """One op on graph inputs x0.., outputs y0..; output shapes from the op's own rule (SLICE's
    and RESHAPE's from `out_shape`)."""
    names = [f"x{i}" for i in range(len(ins))]
    outs = [f"y{i}" for i in range(n_out)]
    tensors = {n: Tensor(n, tuple(s), dtype, q) for n, s in zip(names, ins)}
    tensors.update({n: Tensor(n, out_shape or (1,), dtype, q) for n in outs})
    op = Op("op0", kind, names, outs, attrs)
    g = Graph(tensors, [op], names, outs, name=kind.lower())
    if out_shape is None:
        get_op(kind).check(g, op)  # before the shape rule, which assumes a valid op
        for n, shape in zip(outs, get_op(kind).infer_shapes(g, op)):
            tensors[n] = Tensor(n, tuple(shape), dtype, q)
    verify(g)
    return g


def rand_shape(rng: np.random.Generator, rank: int, hi: int = 5) -> tuple[int, ...]:
    return tuple(int(d) for d in rng.integers(1, hi + 1, rank))


def random_strided_slice(rng: np.random.Generator, shape: tuple[int, ...]) -> dict[str, Any]:
    """Begin/end anywhere around the axis, strides of either sign, random masks (shrinking only
    with positive strides, never every axis); resampled until the op accepts it."""
    rank = len(shape)
    while True:
        attrs = {"begin": tuple(int(rng.integers(-n - 2, n + 3)) for n in shape),
                 "end": tuple(int(rng.integers(-n - 2, n + 3)) for n in shape),
                 "strides": tuple(int(rng.choice([-3, -2, -1, 1, 1, 2, 3])) for _ in shape),
                 "begin_mask": int(rng.integers(0, 1 << rank)),
                 "end_mask": int(rng.integers(0, 1 << rank)),
                 "shrink_axis_mask": int(rng.integers(0, 1 << rank)) & int(rng.integers(0, 16))}
        if attrs["shrink_axis_mask"] == (1 << rank) - 1:
            continue  # a scalar, which the IR holds as (1,) only when read from a file
        try:
            one_op("STRIDED_SLICE", [shape], attrs, qp(0.1))
        except UnsupportedError:
            continue
        return attrs


def random_one_op(kind: str, rng: np.random.Generator) -> Graph:
    """A seeded random int16 graph of one `kind` op (symmetric, one scale for every tensor)."""
    q = qp(float(10.0 ** rng.uniform(-5.0, -2.0)))
    rank = int(rng.integers(1, 5))
    shape = rand_shape(rng, rank)
    if kind == "CONCATENATION":
        axis = int(rng.integers(0, rank))
        ins = []
        for _ in range(int(rng.integers(1, 5))):
            s = list(shape)
            s[axis] = int(rng.integers(1, 5))
            ins.append(tuple(s))
        return one_op(kind, ins, {"axis": axis, "activation": "NONE"}, q)
    if kind == "PAD":
        pads = [tuple(int(p) for p in rng.integers(0, 3, 2)) for _ in range(rank)]
        return one_op(kind, [shape], {"paddings": pads}, q)
    if kind == "STRIDED_SLICE":
        return one_op(kind, [shape], random_strided_slice(rng, shape), q)
    if kind == "SLICE":
        size = tuple(int(rng.integers(1, n + 1)) for n in shape)
        begin = tuple(int(rng.integers(0, n - s + 1)) for n, s in zip(shape, size))
        return one_op(kind, [shape], {"begin": begin}, q, out_shape=size)
    if kind == "RESHAPE":
        flat = int(np.prod(shape))
        out = (flat,) if rng.random() < 0.5 else (1, flat, 1)
        return one_op(kind, [shape], {}, q, out_shape=out)
    if kind == "TRANSPOSE":
        rank5 = int(rng.integers(1, 6))
        return one_op(kind, [rand_shape(rng, rank5)],
                      {"perm": tuple(int(p) for p in rng.permutation(rank5))}, q)
    if kind == "SQUEEZE":
        with_units = tuple(1 if rng.random() < 0.4 else d for d in shape) + (1,)
        return one_op(kind, [with_units], {"axes": () if rng.random() < 0.5 else (-1,)}, q)
    if kind == "EXPAND_DIMS":
        return one_op(kind, [shape], {"axis": int(rng.integers(-rank - 1, rank + 1))}, q)
    if kind in ("SPLIT", "SPLIT_V"):
        axis = int(rng.integers(0, rank))
        n_out = int(rng.integers(1, 5))
        s = list(shape)
        if kind == "SPLIT":
            s[axis] = n_out * int(rng.integers(1, 3))
            return one_op(kind, [tuple(s)], {"axis": axis - rank * int(rng.integers(0, 2))}, q,
                          n_out)
        sizes = tuple(int(v) for v in rng.integers(1, 4, n_out))
        s[axis] = sum(sizes)
        return one_op(kind, [tuple(s)], {"axis": axis, "sizes": sizes}, q, n_out)
    if kind == "PACK":
        return one_op(kind, [shape] * int(rng.integers(1, 4)),
                      {"axis": int(rng.integers(0, rank + 1))}, q)
    assert kind == "UNPACK"
    packed = shape if rank >= 2 else (*shape, 2)
    axis = int(rng.integers(0, len(packed)))
    return one_op(kind, [packed], {"axis": axis}, q, n_out=packed[axis])


# ------------------------------------------------------ 1. C == reference == TFLM, one op each

@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("kind", KINDS)
def test_one_op_int16_matches_tflm(tflm: Any, kind: str, seed: int) -> None:
    g = random_one_op(kind, np.random.default_rng(1600 + 31 * seed + KINDS.index(kind)))
    op = g.ops[0]
    name = get_op(kind).kernel(g, op)
    assert name.endswith("_s16") or name == "te_slice", name  # SLICE: an elem_bytes parameter
    tfl = write_tflite(g)
    verdicts, _ = verify_graph(g, tfl, n_random=3, seed=seed)
    assert all(v.exact and v.max_diff_tflm == 0 for v in verdicts), \
        [v.line(0) for v in verdicts] + [str(op.attrs)]
    back = parse_tflite(tfl)
    assert [o.kind for o in back.ops] == [kind]
    assert all(back.tensor(n).dtype == "int16" for n in back.inputs + back.outputs)


# ------------------------------------------------------------- 2. where int16 differs from int8

def test_pad_int16_pads_with_zero_not_the_zero_point(tflm: Any) -> None:
    """TFLM's int16 PAD writes the literal 0 (its int8 PAD the output zero point). A symmetric
    int16 tensor cannot tell the two apart, so the rule is pinned on a zero point of 7, which
    check() refuses but the reference and TFLM both run: the padding must be 0."""
    tensors = {"x": Tensor("x", (2, 3), "int16", qp(0.01, 7)),
               "y": Tensor("y", (4, 4), "int16", qp(0.01, 7))}
    op = Op("pad", "PAD", ["x"], ["y"], {"paddings": [(1, 1), (0, 1)]})
    g = Graph(tensors, [op], ["x"], ["y"])
    x = np.full((2, 3), -300, np.int16)
    (y,) = get_op("PAD").reference(g, op, [x])
    (want,) = tflm.run_tflm(write_tflite(g), [x])
    np.testing.assert_array_equal(y, want.reshape(y.shape))
    assert (y == 0).sum() == 16 - 6 and (y == -300).sum() == 6
    assert get_op("PAD").emit(g, op).params["pad_value"] == 0
    with pytest.raises(UnsupportedError, match=r"op pad \(PAD\): int16 tensor x has zero point 7"):
        verify(g)
    # int8 keeps its rule: the zero point.
    g8 = Graph({"x": Tensor("x", (2, 3), "int8", qp(0.01, 7)),
                "y": Tensor("y", (4, 4), "int8", qp(0.01, 7))}, [op], ["x"], ["y"])
    (y8,) = get_op("PAD").reference(g8, op, [np.zeros((2, 3), np.int8)])
    assert get_op("PAD").emit(g8, op).params["pad_value"] == 7 and (y8 == 7).sum() == 10


def test_int16_refusals_name_the_op_and_the_tensor() -> None:
    def refused(g: Graph, pattern: str) -> None:
        with pytest.raises(UnsupportedError, match=pattern):
            verify(g)

    def raw(kind: str, ins: dict[str, tuple[tuple[int, ...], str, QuantParams]],
            outs: dict[str, tuple[tuple[int, ...], str, QuantParams]],
            attrs: dict[str, Any]) -> Graph:
        t = {n: Tensor(n, s, d, q) for n, (s, d, q) in {**ins, **outs}.items()}
        return Graph(t, [Op("bad", kind, list(ins), list(outs), attrs)], list(ins), list(outs))

    cat = {"axis": 0, "activation": "NONE"}
    # TFLM's int16 Prepare would copy values across scales; a copy cannot requantise.
    refused(raw("CONCATENATION", {"a": ((2,), "int16", qp(0.01)), "b": ((2,), "int16", qp(0.02))},
                {"y": ((4,), "int16", qp(0.01))}, cat),
            r"op bad \(CONCATENATION\): tensor b \(scale 0.02.*different quantisation; the "
            r"int16 kernel")
    refused(raw("CONCATENATION", {"a": ((2,), "int16", qp(0.01, 3)),
                                  "b": ((2,), "int16", qp(0.01, 3))},
                {"y": ((4,), "int16", qp(0.01, 3))}, cat),
            r"op bad \(CONCATENATION\): int16 tensor a has zero point 3")
    refused(raw("CONCATENATION", {"a": ((2,), "int16", qp(0.01)), "b": ((2,), "int8", qp(0.01))},
                {"y": ((4,), "int16", qp(0.01))}, cat),
            r"op bad \(CONCATENATION\): tensor b is int8 where a is int16")
    refused(raw("TRANSPOSE", {"a": ((2, 3), "int16", qp(0.01))},
                {"y": ((3, 2), "int16", qp(0.02))}, {"perm": (1, 0)}),
            r"op bad \(TRANSPOSE\): input a .* and output y .* must share their quantisation")
    # TFLM's DEPTH_TO_SPACE takes float32 and int8 only.
    refused(raw("DEPTH_TO_SPACE", {"a": ((1, 1, 1, 4), "int16", qp(0.01))},
                {"y": ((1, 2, 2, 1), "int16", qp(0.01))}, {"block_size": 2}),
            r"op bad \(DEPTH_TO_SPACE\): tensor a is int16; the engine runs this op on int8")


# ------------------------------------------------------------ 3. views of 2-byte elements

def _producer_graph() -> Graph:
    """x (1, 4, 6, 2) int16 -> PAD rows -> p (1, 6, 6, 2); x -> TRANSPOSE(0, 2, 1, 3) then
    SLICE -> t (1, 4, 6, 2); CONCATENATION(p, t) along rows -> c (1, 10, 6, 2), SPLIT_V of c
    along rows -> (1, 3, 6, 2), (1, 7, 6, 2), each reversed by a STRIDED_SLICE. Every slice is a
    whole number of 4-byte words, so the planner may make them views."""
    q = qp(0.001)
    t = {"x": Tensor("x", (1, 4, 6, 2), "int16", q)}
    ops: list[Op] = []

    def add(kind: str, ins: list[str], shapes: list[tuple[int, ...]], **attrs: Any) -> list[str]:
        outs = [f"t{len(t) + i}" for i in range(len(shapes))]
        for n, s in zip(outs, shapes):
            t[n] = Tensor(n, s, "int16", q)
        ops.append(Op(f"{kind.lower()}_{len(ops)}", kind, ins, outs, attrs))
        return outs

    (p,) = add("PAD", ["x"], [(1, 6, 6, 2)], paddings=[(0, 0), (1, 1), (0, 0), (0, 0)])
    (tr,) = add("TRANSPOSE", ["x"], [(1, 6, 4, 2)], perm=(0, 2, 1, 3))
    (sl,) = add("SLICE", [tr], [(1, 4, 4, 2)], begin=(0, 1, 0, 0))
    (w,) = add("PAD", [sl], [(1, 4, 6, 2)], paddings=[(0, 0), (0, 0), (1, 1), (0, 0)])
    (c,) = add("CONCATENATION", [p, w], [(1, 10, 6, 2)], axis=1, activation="NONE")
    a, b = add("SPLIT_V", [c], [(1, 3, 6, 2), (1, 7, 6, 2)], axis=1, sizes=(3, 7))
    outs = [add("STRIDED_SLICE", [s], [t[s].shape], begin=(0, 0, 0, 0), end=(1, 1, 1, 1),
                strides=(1, -1, 1, 1), begin_mask=0b1111, end_mask=0b1111,
                shrink_axis_mask=0)[0] for s in (a, b)]
    g = Graph(t, ops, ["x"], outs, name="views16")
    verify(g)
    return g


def test_int16_concatenation_and_split_views_at_byte_offsets(tflm: Any) -> None:
    g = _producer_graph()
    sched = schedule(g, patch="off")
    check_schedule(sched)
    ops = {op.kind: op for op in sched.graph.ops}
    p, w = ops["CONCATENATION"].inputs
    # Byte offsets: p holds 6 * 6 * 2 int16 = 144 bytes (72 elements).
    assert ops["CONCATENATION"].attrs.get("views") == [0, 144]
    assert ops["SPLIT_V"].attrs.get("output_views") == [0, 3 * 6 * 2 * 2]
    off = sched.plan.offsets
    cat = ops["CONCATENATION"].outputs[0]
    assert off[p] == off[cat] and off[w] == off[cat] + 144
    a, b = ops["SPLIT_V"].outputs
    assert off[a] == off[cat] and off[b] == off[cat] + 72
    assert all(off[n] % 2 == 0 for n in off if n in g.tensors and g.tensor(n).dtype == "int16")
    verdicts, _ = verify_graph(g, write_tflite(g), n_random=4, seed=5)
    assert all(v.exact and v.max_diff_tflm == 0 for v in verdicts), [v.line(0) for v in verdicts]


# ----------------------------------------------------------------- 4. the C entry points

CDEF = """
typedef enum { TE_OK = 0, TE_ERR_ARG = 1, TE_ERR_SCRATCH = 2 } te_status_t;
typedef struct { int32_t n; int32_t h; int32_t w; int32_t c; } te_dims_t;
typedef struct { te_dims_t input; te_dims_t output; int32_t pad_before[4];
                 int32_t pad_after[4]; int32_t pad_value; } te_pad_params_t;
te_status_t te_pad_s16(const te_pad_params_t *p, const int16_t *input, int16_t *output);
te_status_t te_pad_s8(const te_pad_params_t *p, const int8_t *input, int8_t *output);
typedef struct { int32_t size; } te_reshape_params_t;
te_status_t te_reshape_s16(const te_reshape_params_t *p, const int16_t *input, int16_t *output);
typedef struct { int32_t size; } te_squeeze_params_t;
te_status_t te_squeeze_s16(const te_squeeze_params_t *p, const int16_t *input, int16_t *output);
typedef struct { int32_t count[5]; int32_t step[5]; int32_t input_size; } te_transpose_params_t;
te_status_t te_transpose_s16(const te_transpose_params_t *, const int16_t *, int16_t *);
typedef struct { int32_t count[5]; int32_t step[5]; int32_t offset; int32_t input_size; }
    te_strided_slice_params_t;
te_status_t te_strided_slice_s16(const te_strided_slice_params_t *, const int16_t *, int16_t *);
typedef struct { int32_t outer; int32_t num_outputs; int32_t chunk[8]; } te_split_params_t;
te_status_t te_split_s16(const te_split_params_t *, const int16_t *, int16_t *, int16_t *,
                         int16_t *, int16_t *, int16_t *, int16_t *, int16_t *, int16_t *);
typedef struct { int32_t n_inputs; int32_t outer; int32_t output_row;
                 const int32_t *copy_sizes; } te_concatenation_params_t;
te_status_t te_concatenation_s16(const te_concatenation_params_t *p, const int16_t *input0,
                                 ...);
typedef struct { int32_t count; int32_t outer; int32_t copy_size; } te_pack_params_t;
te_status_t te_pack_s16(const te_pack_params_t *p, const int16_t *input0, ...);
te_status_t te_unpack_s16(const te_pack_params_t *p, const int16_t *input, ...);
"""


@pytest.fixture(scope="module")
def kern() -> tuple[Any, Any]:
    names = ["te_pad", "te_reshape", "te_squeeze", "te_transpose", "te_strided_slice",
             "te_split", "te_concatenation", "te_pack"]
    return ckernels.build([f"{n}.h" for n in names], [f"{n}.c" for n in names], CDEF)


def test_c_s16_kernels_move_whole_elements_and_refuse_bad_args(kern: tuple[Any, Any]) -> None:
    ffi, lib = kern
    ptr = ffi.from_buffer
    x = np.array([-32768, 32767, 0x0102, -2, 300, -301], np.int16)
    y = np.full(12, 99, np.int16)
    i16 = "int16_t[]"
    # Transpose of a 2x3 matrix: output (j, i) = x[i * 3 + j].
    tp = ffi.new("te_transpose_params_t *", [[1, 1, 1, 3, 2], [0, 0, 0, 1, 3], 6])
    assert lib.te_transpose_s16(tp, ptr(i16, x), ptr(i16, y)) == TE_OK
    np.testing.assert_array_equal(y[:6], x.reshape(2, 3).T.ravel())
    # A reversed walk (negative step) from the last element.
    sp = ffi.new("te_strided_slice_params_t *", [[1, 1, 1, 1, 6], [0, 0, 0, 0, -1], 5, 6])
    assert lib.te_strided_slice_s16(sp, ptr(i16, x), ptr(i16, y)) == TE_OK
    np.testing.assert_array_equal(y[:6], x[::-1])
    sp.offset = 4  # the walk would read x[-1]
    assert lib.te_strided_slice_s16(sp, ptr(i16, x), ptr(i16, y)) == TE_ERR_ARG
    # Padding: one column of -7 on each side of a 2x3 (the value is in int16, not int8, range).
    pad = ffi.new("te_pad_params_t *", [[1, 1, 2, 3], [1, 1, 2, 5], [0, 0, 0, 1],
                                        [0, 0, 0, 1], -1000])
    y[:] = 99
    assert lib.te_pad_s16(pad, ptr(i16, x), ptr(i16, y)) == TE_OK
    np.testing.assert_array_equal(y[:10], np.pad(x.reshape(2, 3), [(0, 0), (1, 1)],
                                                 constant_values=-1000).ravel())
    pad.pad_value = 32768
    assert lib.te_pad_s16(pad, ptr(i16, x), ptr(i16, y)) == TE_ERR_ARG
    pad.pad_value = -1000  # out of int8's range: te_pad_s8 refuses what te_pad_s16 takes
    assert lib.te_pad_s8(pad, ffi.cast("int8_t *", ptr(i16, x)),
                         ffi.cast("int8_t *", ptr(i16, y))) == TE_ERR_ARG
    # Reshape / squeeze: a byte count, which for int16 must be even.
    for fn, ptype in ((lib.te_reshape_s16, "te_reshape_params_t *"),
                      (lib.te_squeeze_s16, "te_squeeze_params_t *")):
        y[:] = 99
        assert fn(ffi.new(ptype, [12]), ptr(i16, x), ptr(i16, y)) == TE_OK
        np.testing.assert_array_equal(y[:6], x)
        assert fn(ffi.new(ptype, [11]), ptr(i16, x), ptr(i16, y)) == TE_ERR_ARG
    # Split into 1 + 2 elements per row of 3.
    a, b = np.zeros(2, np.int16), np.zeros(4, np.int16)
    split = ffi.new("te_split_params_t *", [2, 2, [1, 2, 0, 0, 0, 0, 0, 0]])
    null = ffi.cast("int16_t *", ffi.NULL)
    assert lib.te_split_s16(split, ptr(i16, x), ptr(i16, a), ptr(i16, b), *[null] * 6) == TE_OK
    np.testing.assert_array_equal(a, x.reshape(2, 3)[:, :1].ravel())
    np.testing.assert_array_equal(b, x.reshape(2, 3)[:, 1:].ravel())
    assert lib.te_split_s16(split, ptr(i16, x), ptr(i16, a), null, *[null] * 6) == TE_ERR_ARG
    # Concatenation of the two pieces back, and pack / unpack, with int16 varargs.
    sizes = ffi.new("int32_t[]", [1, 2])
    cp = ffi.new("te_concatenation_params_t *", [2, 2, 3, sizes])
    y[:] = 99
    assert lib.te_concatenation_s16(cp, ptr(i16, a), ffi.cast("const int16_t *", ptr(i16, b)),
                                    ffi.cast("int16_t *", ptr(i16, y))) == TE_OK
    np.testing.assert_array_equal(y[:6], x)
    assert lib.te_concatenation_s16(cp, ptr(i16, a), ffi.cast("const int16_t *", ptr(i16, b)),
                                    null) == TE_ERR_ARG
    pk = ffi.new("te_pack_params_t *", [2, 1, 3])
    assert lib.te_pack_s16(pk, ptr(i16, x), ffi.cast("const int16_t *", ptr(i16, x)) + 3,
                           ffi.cast("int16_t *", ptr(i16, y))) == TE_OK
    np.testing.assert_array_equal(y[:6], x)
    u0, u1 = np.zeros(3, np.int16), np.zeros(3, np.int16)
    assert lib.te_unpack_s16(pk, ptr(i16, x), ffi.cast("int16_t *", ptr(i16, u0)),
                             ffi.cast("int16_t *", ptr(i16, u1))) == TE_OK
    np.testing.assert_array_equal(np.concatenate([u0, u1]), x)
    assert lib.te_unpack_s16(pk, ptr(i16, x), ffi.cast("int16_t *", ptr(i16, u0)),
                             null) == TE_ERR_ARG


# ------------------------------------------------------------- 5. one project under sanitizers

def _chain_graph() -> Graph:
    """Every op of this file in one int16 graph (two inputs)."""
    q = qp(0.0005)
    t = {"x": Tensor("x", (1, 4, 5, 3), "int16", q), "z": Tensor("z", (1, 4, 5, 3), "int16", q)}
    ops: list[Op] = []

    def add(kind: str, ins: list[str], shapes: list[tuple[int, ...]], **attrs: Any) -> list[str]:
        outs = [f"t{len(t) + i}" for i in range(len(shapes))]
        for n, s in zip(outs, shapes):
            t[n] = Tensor(n, s, "int16", q)
        ops.append(Op(f"{kind.lower()}_{len(ops)}", kind, ins, outs, attrs))
        return outs

    (c,) = add("CONCATENATION", ["x", "z"], [(1, 4, 5, 6)], axis=3, activation="NONE")
    (p,) = add("PAD", [c], [(1, 6, 6, 6)], paddings=[(0, 0), (1, 1), (0, 1), (0, 0)])
    (tr,) = add("TRANSPOSE", [p], [(1, 6, 6, 6)], perm=(0, 2, 3, 1))
    (ss,) = add("STRIDED_SLICE", [tr], [(6, 3, 6)], begin=(0, 0, -1, 0), end=(1, 6, 0, 6),
                strides=(1, 1, -2, 1), begin_mask=0, end_mask=4, shrink_axis_mask=1)
    (sl,) = add("SLICE", [ss], [(4, 3, 5)], begin=(1, 0, 1))
    (e,) = add("EXPAND_DIMS", [sl], [(4, 3, 5, 1)], axis=-1)
    (sq,) = add("SQUEEZE", [e], [(4, 3, 5)], axes=(3,))
    s0, s1 = add("SPLIT", [sq], [(2, 3, 5), (2, 3, 5)], axis=0)
    v0, v1 = add("SPLIT_V", [s1], [(2, 1, 5), (2, 2, 5)], axis=1, sizes=(1, 2))
    parts = add("UNPACK", [s0], [(3, 5), (3, 5)], axis=0)
    (pk,) = add("PACK", parts, [(3, 2, 5)], axis=1)
    (r,) = add("RESHAPE", [pk], [(30,)])
    g = Graph(t, ops, ["x", "z"], [r, v0, v1], name="chain16")
    verify(g)
    return g


def test_chain_of_every_op_matches_tflm_and_runs_clean_under_sanitizers(tflm: Any,
                                                                        tmp_path: Path) -> None:
    g = _chain_graph()
    verdicts, _ = verify_graph(g, write_tflite(g), n_random=3, seed=9)
    assert all(v.exact and v.max_diff_tflm == 0 for v in verdicts), [v.line(0) for v in verdicts]
    compile_graph(g, tmp_path / "p", prefix="chain16")
    # The generated code calls exactly the entry points the `kernel` hooks name.
    model_c = (tmp_path / "p" / "chain16_model.c").read_text()
    called = set(re.findall(r"\b(te_\w+)\s*\(", model_c))
    for op in g.ops:
        name = get_op(op.kind).kernel(g, op)
        assert name in called, name
        assert name.endswith("_s16") or name == "te_slice", name
    rng = np.random.default_rng(9)
    check_sanitized_demo(tmp_path / "p", "chain16", g, [random_inputs(g, rng) for _ in range(3)])
    x = random_inputs(g, rng)
    r, v0, v1 = run_reference(g, x)
    assert r.dtype == np.int16 and v0.shape == (2, 1, 5) and v1.shape == (2, 2, 5)


# ------------------------------------------------------------ 6. the SEANet models in ../shared

@pytest.mark.parametrize("name", sorted(SEANET_HEAD))
def test_seanet_model_bit_exact_within_tflm_head(tflm: Any, shared_models: Path,
                                                 name: str) -> None:
    verdicts, report = verify_model(shared_models / name, n_random=20, seed=0)
    assert all(v.exact and v.max_diff_tflm == 0 and v.n_inputs == 20 for v in verdicts), \
        [v.line(report["arena_bytes"]) for v in verdicts]
    assert report["arena_bytes"] <= SEANET_HEAD[name]
