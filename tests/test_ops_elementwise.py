"""SUB, MUL, SQUARED_DIFFERENCE, MAXIMUM and MINIMUM (tinyengine/ops/{sub,mul,squared_difference,
maximum_minimum}.py, csrc/te_elementwise.c), checked on seeded random cases:

1. reference == TFLM: every one of the 65536 int8 operand pairs at once (a (256, 1) x (256,)
   broadcast) under random quantisations and activations, and random broadcasting shapes with
   constant operands; rounding rules pinned by hand-worked values and a SUB case where float32
   and double multipliers would differ;
2. each C kernel, called with what emit() gives, == reference (in place too), and outside its
   documented domain TE_ERR_ARG;
3. generated projects: C == reference == TFLM on random multi-op graphs, and one ASan/UBSan run;
4. invalid graphs raise UnsupportedError naming the op and the tensor;
5. TFLite write -> read round trip, a PyTorch module through ONNX -> int8 -> C, and the QDQ
   export against onnxruntime.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinyengine import quant
from tinyengine.errors import TinyEngineError, UnsupportedError
from tinyengine.frontend.tflite_reader import parse_tflite
from tinyengine.frontend.tflite_writer import write_tflite
from tinyengine.ir import Graph, Op, QuantParams, Tensor, verify
from tinyengine.ops import get_op
from tinyengine.ops.add import add_rescale
from tinyengine.ops.sub import LEFT_SHIFT, scale_input

from . import ckernels
from .sanitized import check_sanitized_demo

KINDS = ("SUB", "MUL", "SQUARED_DIFFERENCE", "MAXIMUM", "MINIMUM")
WITH_ACTIVATION = ("SUB", "MUL")
ACTS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
TE_OK, TE_ERR_ARG = 0, 1


def qp(scale: float, zp: int) -> QuantParams:
    return QuantParams(np.array([scale], np.float32), np.array([zp], np.int64))


def i8(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(-128, 128, shape).astype(np.int8)


def out_scale(kind: str, rng: np.random.Generator, s1: float, s2: float) -> float:
    """An output scale near the result's spread, so outputs neither vanish nor all saturate."""
    u = float(rng.uniform(0.3, 3.0))
    if kind == "SUB":
        return (s1 + s2) * u
    if kind == "MUL":
        return s1 * s2 * 128 * u
    return (max(s1, s2) * 128) ** 2 / 255 * u  # SQUARED_DIFFERENCE


def binary_graph(kind: str, rng: np.random.Generator, sa: tuple[int, ...], sb: tuple[int, ...],
                 const_b: bool = False) -> tuple[Graph, Op]:
    """One op reading a and b (b constant if asked), random quantisation and activation."""
    s1, z1 = float(rng.uniform(0.002, 0.1)), int(rng.integers(-128, 128))
    if kind in ("MAXIMUM", "MINIMUM"):  # one quantisation for all three
        s2, z2, so, zo = s1, z1, s1, z1
    else:
        s2, z2 = float(s1 * rng.uniform(0.1, 10.0)), int(rng.integers(-128, 128))
        so, zo = out_scale(kind, rng, s1, s2), int(rng.integers(-128, 128))
        if kind == "SQUARED_DIFFERENCE":  # a square is >= 0: leave the output room above zp
            zo = int(rng.integers(-128, -40))
    out = tuple(int(d) for d in np.broadcast_shapes(sa, sb))
    b = Tensor("b", sb, "int8", qp(s2, z2), i8(rng, sb) if const_b else None)
    tensors = {"a": Tensor("a", sa, "int8", qp(s1, z1)), "b": b,
               "y": Tensor("y", out, "int8", qp(so, zo))}
    attrs = {"activation": str(rng.choice(ACTS))} if kind in WITH_ACTIVATION else {}
    op = Op("op", kind, ["a", "b"], ["y"], attrs)
    g = Graph(tensors, [op], ["a"] if const_b else ["a", "b"], ["y"])
    verify(g)
    return g, op


def random_shapes(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Equal shapes of rank 1..6, or shapes that broadcast to at most 4-D (ranks may differ)."""
    if rng.integers(0, 3) == 0:
        full = tuple(int(d) for d in rng.integers(1, 5, int(rng.integers(1, 7))))
        return full, full
    full4 = tuple(int(d) for d in rng.integers(1, 6, 4))
    a = tuple(d if rng.integers(0, 2) else 1 for d in full4)
    b = tuple(d if rng.integers(0, 2) else 1 for d in full4)
    a, b = a[int(rng.integers(0, 4)):], b[int(rng.integers(0, 2)):]  # numpy aligns on the right
    return (a, b) if rng.integers(0, 2) else (b, a)


def reference(g: Graph, op: Op, vals: list[np.ndarray]) -> np.ndarray:
    (y,) = get_op(op.kind).reference(g, op, vals)
    assert y.dtype == np.int8 and y.shape == g.tensor(op.outputs[0]).shape
    return y


def tflm_output(tflm: Any, g: Graph, feeds: list[np.ndarray]) -> np.ndarray:
    (y,) = tflm.run_tflm(write_tflite(g), feeds)
    return np.asarray(y).reshape(g.tensor(g.outputs[0]).shape)


# ---------------------------------------------------------------------------------------------
# 1. reference == TFLM
# ---------------------------------------------------------------------------------------------

ALL_A = np.arange(-128, 128).astype(np.int8).reshape(256, 1)
ALL_B = np.arange(-128, 128).astype(np.int8)


@pytest.mark.parametrize("kind", KINDS)
def test_reference_equals_tflm_on_every_int8_pair(kind: str, tflm: Any) -> None:
    rng = np.random.default_rng(100 + KINDS.index(kind))
    for case in range(12):
        g, op = binary_graph(kind, rng, (256, 1), (256,))
        y = reference(g, op, [ALL_A, ALL_B])
        np.testing.assert_array_equal(y, tflm_output(tflm, g, [ALL_A, ALL_B]),
                                      err_msg=f"{kind} case {case}")
        if op.attrs.get("activation", "NONE") == "NONE":
            assert len(np.unique(y)) > 20, "a case that exercises the arithmetic"


@pytest.mark.parametrize("kind", KINDS)
def test_reference_equals_tflm_broadcasting(kind: str, tflm: Any) -> None:
    rng = np.random.default_rng(200 + KINDS.index(kind))
    for case in range(25):
        sa, sb = random_shapes(rng)
        const_b = case % 4 == 3
        g, op = binary_graph(kind, rng, sa, sb, const_b)
        a = i8(rng, sa)
        b = g.tensor("b").data if const_b else i8(rng, sb)
        assert b is not None
        feeds = [a] if const_b else [a, b]
        np.testing.assert_array_equal(reference(g, op, [a, b]), tflm_output(tflm, g, feeds),
                                      err_msg=f"{kind} case {case}: {sa} with {sb}")


def test_sub_multipliers_are_double_like_tflm(tflm: Any) -> None:
    """A case where TFLM's source (float32 divisions in CalculateOpDataSub) and the installed
    TFLM (double, as ADD) give different multipliers and different outputs: we follow TFLM."""
    s1, s2, so = 0.09079098701477051, 0.3860713243484497, 0.6421486735343933
    z1, z2, zo = 121, 32, -2
    tensors = {"a": Tensor("a", (256, 1), "int8", qp(s1, z1)),
               "b": Tensor("b", (256,), "int8", qp(s2, z2)),
               "y": Tensor("y", (256, 256), "int8", qp(so, zo))}
    op = Op("sub", "SUB", ["a", "b"], ["y"], {"activation": "NONE"})
    g = Graph(tensors, [op], ["a", "b"], ["y"])
    theirs = tflm_output(tflm, g, [ALL_A, ALL_B])
    np.testing.assert_array_equal(reference(g, op, [ALL_A, ALL_B]), theirs)

    f1, f2, fo = np.float32(s1), np.float32(s2), np.float32(so)
    twice = np.float32(2) * max(f1, f2)
    m1 = quant.quantize_multiplier(float(np.float32(f1 / twice)))
    m2 = quant.quantize_multiplier(float(np.float32(f2 / twice)))
    mo = quant.quantize_multiplier(float(np.float32(twice / (np.float32(1 << 20) * fo))))
    r = add_rescale(tensors["a"], tensors["b"], tensors["y"])
    assert (m1, m2, mo) != (r.input1, r.input2, r.output)
    x1, x2 = np.broadcast_arrays(ALL_A.astype(np.int64), ALL_B.astype(np.int64))
    diff = scale_input(x1, z1, m1, LEFT_SHIFT) - scale_input(x2, z2, m2, LEFT_SHIFT)
    float32_way = np.clip(quant.multiply_by_quantized_multiplier_smaller_than_one_exp(diff, *mo)
                          + zo, -128, 127)
    assert np.any(float32_way != theirs)  # the case discriminates


@pytest.mark.parametrize("x1, x2, expected", [
    (3, 1, 2),     # 1.5 -> 2: SaturatingRoundingDoublingHighMul rounds the half up
    (-3, 1, -1),   # -1.5 -> -1: the nudge 1 - 2^30 makes the tie go toward +infinity too
    (5, 1, 3),     # 2.5 -> 3
    (-5, 1, -2),   # -2.5 -> -2
    (127, 127, 127),  # 8064.5 saturates
    (-128, 127, -128),
])
def test_mul_rounding_pinned(x1: int, x2: int, expected: int, tflm: Any) -> None:
    # Scales 1, 1 -> 2: real multiplier 0.5 = 2^30 * 2^(0-31), so y = SRDHM(x1 * x2, 2^30).
    tensors = {"a": Tensor("a", (1,), "int8", qp(1.0, 0)),
               "b": Tensor("b", (1,), "int8", qp(1.0, 0)),
               "y": Tensor("y", (1,), "int8", qp(2.0, 0))}
    op = Op("mul", "MUL", ["a", "b"], ["y"], {"activation": "NONE"})
    g = Graph(tensors, [op], ["a", "b"], ["y"])
    feeds = [np.array([x1], np.int8), np.array([x2], np.int8)]
    assert int(reference(g, op, feeds)[0]) == expected
    assert int(tflm_output(tflm, g, feeds)[0]) == expected


def test_squared_difference_pinned(tflm: Any) -> None:
    # Input scales s = 2^-7 give each input the multiplier 0.5 (2^30, shift 0), so
    # s_k = ((x_k - zp) << 7) / 2 = 64 (x_k - zp). Output scale s^2: real_out = (2 s)^2 /
    # (2^14 s^2) = 2^-12 (2^30, shift -11), so y = (64 d)^2 / 2^12 = d^2 for d = x_1 - x_2.
    s = 2.0**-7
    tensors = {"a": Tensor("a", (5,), "int8", qp(s, 0)), "b": Tensor("b", (5,), "int8", qp(s, 0)),
               "y": Tensor("y", (5,), "int8", qp(s * s, -128))}
    op = Op("sqd", "SQUARED_DIFFERENCE", ["a", "b"], ["y"], {})
    g = Graph(tensors, [op], ["a", "b"], ["y"])
    a = np.array([0, 3, -7, 11, 100], np.int8)
    b = np.array([0, 1, 2, 0, -100], np.int8)
    expected = np.minimum((a.astype(int) - b) ** 2 - 128, 127)
    np.testing.assert_array_equal(reference(g, op, [a, b]), expected)
    np.testing.assert_array_equal(tflm_output(tflm, g, [a, b]), expected)


# ---------------------------------------------------------------------------------------------
# 2. C kernels == reference
# ---------------------------------------------------------------------------------------------

CDEF = """
typedef enum { TE_OK = 0, TE_ERR_ARG = 1, TE_ERR_SCRATCH = 2 } te_status_t;
typedef struct { int32_t n; int32_t h; int32_t w; int32_t c; } te_dims_t;
typedef struct { te_dims_t input1; te_dims_t input2; te_dims_t output; } te_broadcast_dims_t;
typedef struct { int32_t offset; int32_t multiplier; int32_t shift; } te_ew_input_t;
typedef struct {
    te_broadcast_dims_t dims; te_ew_input_t input1; te_ew_input_t input2; int32_t left_shift;
    int32_t output_multiplier; int32_t output_shift; int32_t output_offset;
    int32_t act_min; int32_t act_max;
} te_sub_params_t;
typedef struct {
    te_broadcast_dims_t dims; te_ew_input_t input1; te_ew_input_t input2; int32_t left_shift;
    int32_t output_multiplier; int32_t output_shift; int32_t output_offset;
    int32_t act_min; int32_t act_max;
} te_squared_difference_params_t;
typedef struct {
    te_broadcast_dims_t dims; int32_t input1_offset; int32_t input2_offset;
    int32_t output_multiplier; int32_t output_shift; int32_t output_offset;
    int32_t act_min; int32_t act_max;
} te_mul_params_t;
typedef struct { te_broadcast_dims_t dims; } te_max_min_params_t;
te_status_t te_sub_s8(const te_sub_params_t *p, const int8_t *input1, const int8_t *input2,
                      int8_t *output);
te_status_t te_squared_difference_s8(const te_squared_difference_params_t *p,
                                     const int8_t *input1, const int8_t *input2, int8_t *output);
te_status_t te_mul_s8(const te_mul_params_t *p, const int8_t *input1, const int8_t *input2,
                      int8_t *output);
te_status_t te_maximum_s8(const te_max_min_params_t *p, const int8_t *input1,
                          const int8_t *input2, int8_t *output);
te_status_t te_minimum_s8(const te_max_min_params_t *p, const int8_t *input1,
                          const int8_t *input2, int8_t *output);
"""


@pytest.fixture(scope="module")
def kernels() -> tuple[Any, Any]:
    return ckernels.build(["te_elementwise.h"], ["te_elementwise.c"], CDEF)


def fill(ffi: Any, cdata: Any, values: dict[str, Any] | list[Any]) -> None:
    """Set a cffi struct from emit()'s designated initialisers (nested lists -> nested structs)."""
    fields = [f for f, _ in ffi.typeof(cdata).fields]
    items = list(values.items()) if isinstance(values, dict) else list(zip(fields, values,
                                                                           strict=True))
    assert [k for k, _ in items] == fields[:len(items)], "params out of struct field order"
    for key, value in items:
        if isinstance(value, list):
            fill(ffi, getattr(cdata, key), value)
        else:
            setattr(cdata, key, value)


def call_kernel(kernels: tuple[Any, Any], g: Graph, op: Op, vals: list[np.ndarray],
                out: np.ndarray, aliased: int | None = None) -> int:
    """Call the kernel emit() names; `aliased` = an input position whose buffer is `out`."""
    ffi, lib = kernels
    em = get_op(op.kind).emit(g, op)
    assert em.kernel == get_op(op.kind).kernel(g, op)
    params = ffi.new(f"{em.params_type} *")
    fill(ffi, params[0], em.params)
    consts = {c.name: np.ascontiguousarray(c.values, np.int8) for c in em.consts}
    bufs = {n: np.ascontiguousarray(v) for n, v in zip(op.inputs, vals)}
    if aliased is not None:
        out[...] = vals[aliased].reshape(out.shape)
        bufs[op.inputs[aliased]] = out
    bufs[op.outputs[0]] = out
    args = [ffi.from_buffer("int8_t[]", bufs[a.ref] if a.kind == "tensor" else consts[a.ref])
            for a in em.args]
    return int(getattr(lib, em.kernel)(params, *args))


@pytest.mark.parametrize("kind", KINDS)
def test_c_kernel_matches_reference(kind: str, kernels: tuple[Any, Any]) -> None:
    rng = np.random.default_rng(300 + KINDS.index(kind))
    for case in range(40):
        sa, sb = random_shapes(rng)
        g, op = binary_graph(kind, rng, sa, sb, const_b=case % 5 == 4)
        a = i8(rng, sa)
        b = g.tensor("b").data if g.tensor("b").is_const else i8(rng, sb)
        assert b is not None
        expected = reference(g, op, [a, b])
        out = np.full(expected.shape, 55, np.int8)
        assert call_kernel(kernels, g, op, [a, b], out) == TE_OK
        np.testing.assert_array_equal(out, expected, err_msg=f"{kind} case {case}")
        for pos in get_op(kind).inplace_inputs(g, op):  # output overwriting that input
            out = np.zeros(expected.shape, np.int8)
            assert call_kernel(kernels, g, op, [a, b], out, aliased=pos) == TE_OK
            np.testing.assert_array_equal(out, expected, err_msg=f"{kind} in place {pos}")


def test_c_kernels_refuse_parameters_outside_their_domain(kernels: tuple[Any, Any]) -> None:
    ffi, lib = kernels
    x = np.zeros(8, np.int8)
    buf = ffi.from_buffer("int8_t[]", x)
    ok_dims = [[1, 1, 2, 4], [1, 1, 1, 4], [1, 1, 2, 4]]
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("te_sub_s8", "te_sub_params_t",
         {"dims": ok_dims, "input1": [0, 1 << 30, 0], "input2": [0, 1 << 30, 0],
          "left_shift": 20, "output_multiplier": 1 << 30, "output_shift": -20,
          "output_offset": 0, "act_min": -128, "act_max": 127}),
        ("te_squared_difference_s8", "te_squared_difference_params_t",
         {"dims": ok_dims, "input1": [0, 1 << 30, 0], "input2": [0, 1 << 30, 0],
          "left_shift": 7, "output_multiplier": 1 << 30, "output_shift": -10,
          "output_offset": 0, "act_min": -128, "act_max": 127}),
        ("te_mul_s8", "te_mul_params_t",
         {"dims": ok_dims, "input1_offset": 0, "input2_offset": 0,
          "output_multiplier": 1 << 30, "output_shift": 0, "output_offset": 0,
          "act_min": -128, "act_max": 127}),
        ("te_maximum_s8", "te_max_min_params_t", {"dims": ok_dims}),
        ("te_minimum_s8", "te_max_min_params_t", {"dims": ok_dims}),
    ]
    bad_values = {"output_shift": {"te_sub_s8": 1, "te_squared_difference_s8": 2,
                                   "te_mul_s8": 16},
                  "left_shift": {"te_sub_s8": 21, "te_squared_difference_s8": 8},
                  "act_min": {"te_sub_s8": -129, "te_squared_difference_s8": -129,
                              "te_mul_s8": -129},
                  "act_max": {"te_sub_s8": 128, "te_mul_s8": 128},
                  "input1_offset": {"te_mul_s8": -128}, "output_offset": {"te_mul_s8": 128}}
    for kernel, ptype, good in cases:
        def run(values: dict[str, Any], null: bool = False, kernel: str = kernel,
                ptype: str = ptype) -> int:
            p = ffi.new(f"{ptype} *")
            fill(ffi, p[0], values)
            return int(getattr(lib, kernel)(p, buf, ffi.NULL if null else buf, buf))
        assert run(good) == TE_OK, kernel
        assert run(good, null=True) == TE_ERR_ARG, kernel
        # input2 (1, 1, 3, 4) does not broadcast to the output (1, 1, 2, 4).
        assert run({**good, "dims": [ok_dims[0], [1, 1, 3, 4], ok_dims[2]]}) == TE_ERR_ARG
        assert run({**good, "dims": [ok_dims[0], ok_dims[1], [1, 1, 0, 4]]}) == TE_ERR_ARG
        for key, per_kernel in bad_values.items():
            if kernel in per_kernel:
                assert run({**good, key: per_kernel[kernel]}) == TE_ERR_ARG, (kernel, key)
        if "input1" in good:
            assert run({**good, "input1": [-128, 1 << 30, 0]}) == TE_ERR_ARG, kernel
            assert run({**good, "input2": [0, 1 << 30, 1]}) == TE_ERR_ARG, kernel


# ---------------------------------------------------------------------------------------------
# 3. Generated projects
# ---------------------------------------------------------------------------------------------

def chain_graph(rng: np.random.Generator) -> Graph:
    """Two inputs (x full 4-D, w broadcast) and a chain of each of the five ops plus one more,
    some with constants;
    MAXIMUM / MINIMUM read tensors that share their quantisation."""
    h, w, c = (int(d) for d in rng.integers(1, 6, 3))
    tensors: dict[str, Tensor] = {
        "x": Tensor("x", (1, h, w, c), "int8", qp(float(rng.uniform(0.01, 0.1)), 5)),
        "w": Tensor("w", (c,) if rng.integers(0, 2) else (1, h, 1, 1), "int8",
                    qp(float(rng.uniform(0.01, 0.1)), -9)),
    }
    ops: list[Op] = []
    pool = ["x", "w"]
    kinds = list(KINDS)
    rng.shuffle(kinds)
    for i, kind in enumerate(kinds + [str(rng.choice(KINDS))]):
        a = str(rng.choice(pool))
        ta = tensors[a]
        assert ta.quant is not None
        if kind in ("MAXIMUM", "MINIMUM"):
            same = [n for n in pool if n != a and tensors[n].quant is not None
                    and tensors[n].scale == ta.scale and tensors[n].zero_point == ta.zero_point]
            if same and rng.integers(0, 2):
                b = str(rng.choice(same))
            else:
                b = f"k{i}"
                shape = (1, 1, 1, ta.shape[-1]) if len(ta.shape) == 4 else ta.shape
                tensors[b] = Tensor(b, shape, "int8", ta.quant, i8(rng, shape))
            so, zo = ta.scale, ta.zero_point
        else:
            b = str(rng.choice([n for n in pool if n != a]))
            if rng.integers(0, 4) == 0:
                src = tensors[b]
                b = f"k{i}"
                tensors[b] = Tensor(b, src.shape, "int8", src.quant, i8(rng, src.shape))
            so = out_scale(kind, rng, ta.scale, tensors[b].scale)
            zo = int(rng.integers(-60, 60))
        shape = tuple(int(d) for d in np.broadcast_shapes(ta.shape, tensors[b].shape))
        out = f"t{i}"
        tensors[out] = Tensor(out, shape, "int8", qp(so, zo))
        attrs = {"activation": str(rng.choice(ACTS))} if kind in WITH_ACTIVATION else {}
        ops.append(Op(f"{kind.lower()}_{i}", kind, [a, b], [out], attrs))
        pool.append(out)
    read = {n for op in ops for n in op.inputs}
    outputs = [n for n in pool[2:] if n not in read] or [pool[-1]]
    g = Graph(tensors, ops, ["x", "w"], outputs)
    verify(g)
    return g


@pytest.mark.parametrize("seed", range(3))
def test_generated_c_equals_reference_and_tflm(seed: int, tflm: Any) -> None:
    from tinyengine.verify import verify_graph

    g = chain_graph(np.random.default_rng(400 + seed))
    verdicts, _ = verify_graph(g, write_tflite(g), n_random=6, seed=seed)
    assert all(v.exact for v in verdicts), [v.line(0) for v in verdicts]


def test_patch_stage_of_elementwise_ops(tflm: Any) -> None:
    """MUL by a per-channel constant, SUB and MAXIMUM run patch by patch (patch = "elementwise")
    and stay exact with the whole-tensor reference and TFLM."""
    from tinyengine.verify import verify_graph

    rng = np.random.default_rng(450)
    q = qp(0.05, 3)
    ts = {"x": Tensor("x", (1, 8, 8, 3), "int8", q),
          "g": Tensor("g", (1, 1, 1, 3), "int8", qp(0.02, -5), i8(rng, (1, 1, 1, 3))),
          "t0": Tensor("t0", (1, 8, 8, 3), "int8", qp(0.04, 1)),
          "t1": Tensor("t1", (1, 8, 8, 3), "int8", qp(0.08, -3)),
          "t2": Tensor("t2", (1, 8, 8, 3), "int8", qp(0.08, -3)),
          "t3": Tensor("t3", (1, 8, 8, 3), "int8", qp(0.3, -128))}
    ops = [Op("mul", "MUL", ["x", "g"], ["t0"], {"activation": "NONE"}),
           Op("sub", "SUB", ["t0", "x"], ["t1"], {"activation": "RELU"}),
           Op("max", "MAXIMUM", ["t1", "t1"], ["t2"], {}),
           Op("sqd", "SQUARED_DIFFERENCE", ["t2", "x"], ["t3"], {})]
    g = Graph(ts, ops, ["x"], ["t3"])
    verify(g)
    verdicts, report = verify_graph(g, write_tflite(g), n_random=4, seed=0,
                                    compile_options={"patch": "2x2@3"})
    assert report["patches"]["grid"] == [2, 2]
    assert all(v.exact for v in verdicts), [v.line(0) for v in verdicts]


def test_sanitized_build_matches_reference(tmp_path: Path) -> None:
    from tinyengine.codegen import compile_graph
    from tinyengine.inputs import random_inputs

    g = chain_graph(np.random.default_rng(500))
    assert {op.kind for op in g.ops} == set(KINDS)
    compile_graph(g, tmp_path / "p", prefix="ew")
    rng = np.random.default_rng(0)
    check_sanitized_demo(tmp_path / "p", "ew", g, [random_inputs(g, rng) for _ in range(3)])


# ---------------------------------------------------------------------------------------------
# 4. Invalid graphs
# ---------------------------------------------------------------------------------------------

def invalid(kind: str, sa: tuple[int, ...], sb: tuple[int, ...], out: tuple[int, ...],
            **change: Any) -> Graph:
    qa, qb, qo = (change.get(k, qp(0.05, 0)) for k in ("qa", "qb", "qo"))
    tensors = {"a": Tensor("a", sa, "int8", qa),
               "b": Tensor("b", sb, change.get("b_dtype", "int8"), qb),
               "y": Tensor("y", out, "int8", qo)}
    inputs = change.get("inputs", ["a", "b"])
    op = Op("bad_op", kind, inputs, ["y"], change.get("attrs", {}))
    return Graph(tensors, [op], ["a", "b"], ["y"])


INVALID = [
    ("no broadcast", invalid("SUB", (2, 3), (4,), (2, 3)), ["do not broadcast", "a", "b"]),
    ("5-D broadcast", invalid("MUL", (2, 1, 3, 4, 5), (5,), (2, 1, 3, 4, 5)),
     ["up to 4-D", "a", "b"]),
    ("float operand", invalid("SQUARED_DIFFERENCE", (4,), (4,), (4,), b_dtype="float32",
                              qb=None), ["tensor b", "float32", "int8"]),
    ("int16 operand", invalid("MAXIMUM", (4,), (4,), (4,), b_dtype="int16"),
     ["tensor b", "int16"]),
    ("per-channel operand", invalid("MINIMUM", (1, 2), (1, 2), (1, 2),
                                    qa=QuantParams(np.array([0.1, 0.2], np.float32),
                                                   np.zeros(2, np.int64), 1)),
     ["a", "per channel"]),
    ("max rescales", invalid("MAXIMUM", (4,), (4,), (4,), qb=qp(0.06, 0)),
     ["input b", "output y", "share one quantisation"]),
    ("min zero points", invalid("MINIMUM", (4,), (4,), (4,), qo=qp(0.05, 3)),
     ["input a", "output y", "share one quantisation"]),
    ("sub output scale", invalid("SUB", (4,), (4,), (4,), qo=qp(1e-8, 0),
                                 attrs={"activation": "NONE"}), ["output y", "too small"]),
    ("mul output scale", invalid("MUL", (4,), (4,), (4,), qa=qp(10.0, 0), qb=qp(10.0, 0),
                                 qo=qp(1e-3, 0), attrs={"activation": "NONE"}),
     ["output y", "too small"]),
    ("sqd output scale", invalid("SQUARED_DIFFERENCE", (4,), (4,), (4,), qo=qp(1e-8, 0)),
     ["output y", "too small"]),
    ("activation on max", invalid("MAXIMUM", (4,), (4,), (4,), attrs={"activation": "RELU"}),
     ["no fused activation", "RELU"]),
    ("tanh on sub", invalid("SUB", (4,), (4,), (4,), attrs={"activation": "TANH"}),
     ["TANH"]),
    ("one input", invalid("MUL", (4,), (4,), (4,), inputs=["a"]), ["two inputs"]),
]


def test_zero_point_outside_int8_is_refused_by_tensor() -> None:
    """Checked for every tensor before any op's own rules (tinyengine.ir.verify)."""
    with pytest.raises(TinyEngineError, match=r"tensor a: zero point 300 is outside the int8"):
        verify(invalid("SUB", (4,), (4,), (4,), qa=qp(0.05, 300)))


@pytest.mark.parametrize("name, graph, words", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_graphs_are_refused_by_name(name: str, graph: Graph, words: list[str]) -> None:
    with pytest.raises(UnsupportedError) as e:
        verify(graph)
    msg = str(e.value)
    assert "op bad_op" in msg, msg
    # common.check_int8_io's per-channel message names the op but not its kind.
    assert name == "per-channel operand" or graph.ops[0].kind in msg, msg
    for w in words:
        assert w in msg, (w, msg)


# ---------------------------------------------------------------------------------------------
# 5. Frontends and QDQ
# ---------------------------------------------------------------------------------------------

def test_tflite_round_trip() -> None:
    rng = np.random.default_rng(600)
    for kind in KINDS:
        g, op = binary_graph(kind, rng, (1, 3, 4, 2), (2,), const_b=kind == "MUL")
        back = parse_tflite(write_tflite(g))
        (op2,) = back.ops
        assert op2.kind == kind and op2.attrs == op.attrs
        assert [back.tensor(n).shape for n in op2.inputs] == [(1, 3, 4, 2), (2,)]
        assert back.tensor(op2.inputs[1]).is_const == (kind == "MUL")


def test_torch_module_through_onnx(tmp_path: Path) -> None:
    """Sub with a fused ReLU, Mul by a per-channel constant, Max, Min and Sub of a scalar from a
    PyTorch module -> ONNX -> int8 -> C, bit-exact with the reference; the QDQ export agrees with
    onnxruntime per op within one step."""
    torch = pytest.importorskip("torch")
    from tinyengine.convert import compile_onnx, export_torch, quantize_onnx
    from tinyengine.quantize.qdq import compare_per_op, qdq_model
    from tinyengine.reference import run_reference
    from tinyengine.runtime import HostModel

    class Elementwise(torch.nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.proj = torch.nn.Conv2d(3, 4, 1)
            self.gain = torch.nn.Parameter(torch.rand(1, 4, 1, 1) + 0.5)

        def forward(self, x: Any) -> Any:
            y, z = self.conv(x), self.proj(x)
            m = torch.relu(y - z) * self.gain
            return torch.minimum(torch.maximum(m, z), y) - 0.5

    torch.manual_seed(0)
    calib = np.random.default_rng(0).normal(0, 1, (16, 3, 6, 6)).astype(np.float32)
    path = export_torch(Elementwise(), torch.from_numpy(calib[:1]), tmp_path / "m.onnx")
    model, graph = quantize_onnx(path, calib)
    kinds = [op.kind for op in graph.ops]
    assert kinds == ["QUANTIZE", "CONV_2D", "CONV_2D", "SUB", "MUL", "MAXIMUM", "MINIMUM", "SUB",
                     "DEQUANTIZE"]
    assert graph.ops[3].attrs["activation"] == "RELU"  # the Relu folded into SUB
    compile_onnx(path, tmp_path / "p", calib)
    assert (tmp_path / "p" / "model_qdq.onnx").is_file()
    host = HostModel(tmp_path / "p")
    for x in calib[:3]:
        x_ir = x[None].transpose(0, 2, 3, 1)
        np.testing.assert_array_equal(host.invoke([x_ir])[0], run_reference(graph, [x_ir])[0])
    per_op = compare_per_op(graph, model, qdq_model(graph, model), list(calib[:3, None]))
    for kind in ("SUB", "MUL", "MAXIMUM", "MINIMUM"):
        assert per_op[kind].max_abs_diff <= 1, (kind, per_op[kind])


class _Layouts:
    input_layouts: dict[str, str] = {}
    output_layouts: dict[str, str] = {}
    source = "test"


def test_qdq_export_of_every_op_agrees_with_onnxruntime() -> None:
    """float x -> QUANTIZE -> op(x, constant broadcast in NHWC) -> DEQUANTIZE, for each kind;
    onnxruntime running the QDQ model as written agrees within one int8 step."""
    pytest.importorskip("onnxruntime")
    from tinyengine.quantize.qdq import compare_with_onnxruntime, qdq_model

    rng = np.random.default_rng(700)
    for kind in KINDS:
        g, op = binary_graph(kind, rng, (1, 3, 4, 2), (2,), const_b=True)
        op.attrs.pop("activation", None)
        if kind in WITH_ACTIVATION:
            op.attrs["activation"] = "RELU6"
        g.tensors["xf"] = Tensor("xf", (1, 3, 4, 2), "float32")
        g.tensors["yf"] = Tensor("yf", g.tensor("y").shape, "float32")
        g.ops = [Op("q", "QUANTIZE", ["xf"], ["a"]), op, Op("dq", "DEQUANTIZE", ["y"], ["yf"])]
        g.inputs, g.outputs = ["xf"], ["yf"]
        verify(g)
        sa = g.tensor("a")
        xs = [(sa.scale * (i8(rng, (1, 3, 4, 2)).astype(np.float32) - sa.zero_point))
              for _ in range(3)]
        agreement = compare_with_onnxruntime(g, _Layouts(), qdq_model(g, _Layouts()), xs,
                                             optimized=False)
        assert agreement.max_abs_diff <= 1, (kind, agreement)


def test_onnx_refusals(tmp_path: Path) -> None:
    """Max with three inputs, and an activation of lower rank broadcast against NCHW."""
    import onnx
    from onnx import TensorProto, helper

    from tinyengine.frontend.onnx_reader import load_onnx

    def model(node: Any, inputs: list[Any]) -> Path:
        out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 3, 3])
        g = helper.make_graph([node], "g", inputs, [out])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        path = tmp_path / f"{node.name}.onnx"
        onnx.save(m, str(path))
        return path

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 3])
    v = helper.make_tensor_value_info("v", TensorProto.FLOAT, [1, 3])
    x2 = helper.make_tensor_value_info("x2", TensorProto.FLOAT, [1, 2, 3, 3])
    x3 = helper.make_tensor_value_info("x3", TensorProto.FLOAT, [1, 2, 3, 3])
    with pytest.raises(UnsupportedError, match="only two inputs"):
        load_onnx(model(helper.make_node("Max", ["x", "x2", "x3"], ["y"], name="max3"),
                        [x, x2, x3]))
    with pytest.raises(UnsupportedError, match="rank 2"):
        load_onnx(model(helper.make_node("Sub", ["x", "v"], ["y"], name="sub_rank"), [x, v]))
