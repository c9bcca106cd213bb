"""int16 (TFLite 16x8 mode) ADD, SUB, MUL, QUANTIZE and DEQUANTIZE, checked on seeded random cases:

1. the numpy reference against naive scalar transcriptions of TFLM's int16 paths written here
   (AddElementwise / SubElementwise with left_shift 15, MulElementwise, Requantize,
   AffineQuantize, Dequantize);
2. the reference against TFLM itself on one-op graphs written with the TFLite writer: every op
   and every conversion, broadcasting, constant operands and fused activations; and pins of each
   place where the int16 path differs from the int8 one (headroom 15, no power-of-two path,
   int16 clamps and activation limits, int16 zero points in QUANTIZE);
3. the C kernels: tests/test_ops_16x8_arith_c.py;
4. generated projects: a multi-op int16 graph and the SEANet ADD/SUB/QUANTIZE models equal TFLM
   bit for bit, within TFLM's arena head; one ASan/UBSan run;
5. refusals name the op and the tensor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinyengine.errors import UnsupportedError
from tinyengine.frontend.tflite_writer import write_tflite
from tinyengine.ir import QRANGE, Graph, Op, QuantParams, Tensor, verify
from tinyengine.ops import get_op

from .sanitized import check_sanitized_demo
from .test_ops_dw_fc_add import n_mbqm, n_mbqm_lt1, n_quantize_multiplier, n_round, n_wrap32

ACTS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
BINARY = ("ADD", "SUB", "MUL")
I16_MIN, I16_MAX = QRANGE["int16"]
TE_OK, TE_ERR_ARG = 0, 1
# (input, output) types TFLM's QUANTIZE converts between (float32: AffineQuantize).
CONVERSIONS = (("float32", "int8"), ("float32", "int16"), ("int8", "int16"), ("int16", "int8"),
               ("int16", "int16"), ("int32", "int16"), ("int16", "int32"), ("int8", "int32"),
               ("int32", "int8"), ("int8", "int8"))
# TFLM's arena head for these models (shared/models/MANIFEST.md).
SEANET_HEADS = {"tflm_seanet_add0.tflite": 1920, "tflm_seanet_sub0.tflite": 6272,
                "tflm_seanet_quantize0.tflite": 3840}


# ---------------------------------------------------------------------------------------------
# Naive scalar transcriptions of TFLM's int16 paths
# ---------------------------------------------------------------------------------------------

def n_act_range(act: str, scale: float, zp: int, qmin: int, qmax: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for an output of range [qmin, qmax]."""
    def q(f: float) -> int:
        return zp + n_round(float(np.float32(f) / np.float32(scale)))
    lo, hi = {"NONE": (qmin, qmax), "RELU": (q(0.0), qmax), "RELU6": (q(0.0), q(6.0)),
              "RELU_N1_TO_1": (q(-1.0), q(1.0))}[act]
    return max(qmin, lo), min(qmax, hi)


def _at(x: np.ndarray, idx: tuple[int, ...]) -> int:
    """x's element for output index idx under numpy broadcasting (BroadcastBinaryOpSimple)."""
    pad = len(idx) - x.ndim
    return int(x[tuple(0 if x.shape[k] == 1 else idx[pad + k] for k in range(x.ndim))])


def n_add_sub(kind: str, x1: np.ndarray, x2: np.ndarray, s1: float, s2: float, so: float,
              act: str, left_shift: int = 15) -> np.ndarray:
    """CalculateOpDataAdd/Sub + AddElementwise/SubElementwise on symmetric int16 tensors;
    `left_shift` 20 gives what the int8 rule would compute (wrapping like int32)."""
    twice_max = 2 * float(max(np.float32(s1), np.float32(s2)))
    m1 = n_quantize_multiplier(float(np.float32(s1)) / twice_max)
    m2 = n_quantize_multiplier(float(np.float32(s2)) / twice_max)
    mo = n_quantize_multiplier(twice_max / ((1 << left_shift) * float(np.float32(so))))
    lo, hi = n_act_range(act, so, 0, I16_MIN, I16_MAX)
    shape = np.broadcast_shapes(x1.shape, x2.shape)
    out = np.zeros(shape, np.int16)
    for idx in np.ndindex(*shape):
        a = n_mbqm_lt1(n_wrap32(_at(x1, idx) * (1 << left_shift)), *m1)
        b = n_mbqm_lt1(n_wrap32(_at(x2, idx) * (1 << left_shift)), *m2)
        raw = n_wrap32(a + b if kind == "ADD" else a - b)
        out[idx] = min(max(n_mbqm_lt1(raw, *mo), lo), hi)
    return out


def n_mul(x1: np.ndarray, x2: np.ndarray, s1: float, s2: float, so: float,
          act: str) -> np.ndarray:
    """CalculateOpDataMul + MulElementwise on symmetric int16 tensors."""
    m = n_quantize_multiplier(float(np.float32(s1)) * float(np.float32(s2))
                              / float(np.float32(so)))
    lo, hi = n_act_range(act, so, 0, I16_MIN, I16_MAX)
    shape = np.broadcast_shapes(x1.shape, x2.shape)
    out = np.zeros(shape, np.int16)
    for idx in np.ndindex(*shape):
        out[idx] = min(max(n_mbqm(_at(x1, idx) * _at(x2, idx), *m), lo), hi)
    return out


def n_convert(x: np.ndarray, in_t: Tensor, out_t: Tensor) -> np.ndarray:
    """QUANTIZE as quantize_common.cc: AffineQuantize from float32, Requantize otherwise."""
    lo, hi = (-(1 << 31), (1 << 31) - 1) if out_t.dtype == "int32" else QRANGE[out_t.dtype]
    out = np.zeros(x.shape, out_t.dtype)
    if in_t.dtype == "float32":
        for i, v in np.ndenumerate(x):
            q = float(np.float32(v) / np.float32(out_t.scale))
            out[i] = min(max(n_round(q) + out_t.zero_point, lo), hi)
        return out
    m = n_quantize_multiplier(float(np.float32(in_t.scale)) / float(np.float32(out_t.scale)))
    for i, v in np.ndenumerate(x):
        out[i] = min(max(n_mbqm(int(v) - in_t.zero_point, *m) + out_t.zero_point, lo), hi)
    return out


def n_dequantize(x: np.ndarray, scale: float, zp: int) -> np.ndarray:
    """static_cast<float>(double(scale) * (val - zero_point))."""
    return np.array([np.float32(float(np.float32(scale)) * (int(v) - zp)) for v in x.ravel()],
                    np.float32).reshape(x.shape)


# ---------------------------------------------------------------------------------------------
# Seeded random one-op graphs
# ---------------------------------------------------------------------------------------------

def qp(scale: float, zp: int = 0) -> QuantParams:
    return QuantParams(np.array([scale], np.float32), np.array([zp], np.int64))


def rand_values(rng: np.random.Generator, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


def random_shapes(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Equal shapes of rank 1..5, or shapes that broadcast to at most 4-D (ranks may differ)."""
    if rng.integers(0, 3) == 0:
        full = tuple(int(d) for d in rng.integers(1, 5, int(rng.integers(1, 6))))
        return full, full
    full4 = tuple(int(d) for d in rng.integers(1, 6, 4))
    a = tuple(d if rng.integers(0, 2) else 1 for d in full4)
    b = tuple(d if rng.integers(0, 2) else 1 for d in full4)
    a, b = a[int(rng.integers(0, 3)):], b[int(rng.integers(0, 4)):]  # numpy aligns on the right
    return (a, b) if rng.integers(0, 2) else (b, a)


def binary_case(kind: str, rng: np.random.Generator, const_b: bool = False,
                shapes: tuple[tuple[int, ...], tuple[int, ...]] | None = None
                ) -> tuple[Graph, Op, list[np.ndarray]]:
    """One symmetric int16 ADD/SUB/MUL with random scales and activation, and its operands."""
    sa, sb = shapes or random_shapes(rng)
    s1 = float(rng.uniform(1e-4, 2e-3))
    s2 = s1 * float(rng.uniform(0.1, 10.0))
    u = float(rng.uniform(0.3, 3.0))
    so = s1 * s2 * 32768 * u if kind == "MUL" else (s1 + s2) * u
    a, b = rand_values(rng, "int16", sa), rand_values(rng, "int16", sb)
    out = tuple(int(d) for d in np.broadcast_shapes(sa, sb))
    ts = {"a": Tensor("a", sa, "int16", qp(s1)),
          "b": Tensor("b", sb, "int16", qp(s2), b if const_b else None),
          "y": Tensor("y", out, "int16", qp(so))}
    op = Op("op", kind, ["a", "b"], ["y"], {"activation": str(rng.choice(ACTS))})
    g = Graph(ts, [op], ["a"] if const_b else ["a", "b"], ["y"])
    verify(g)
    return g, op, [a, b]


def convert_case(rng: np.random.Generator, in_dtype: str, out_dtype: str, kind: str = "QUANTIZE",
                 shape: tuple[int, ...] = (3, 37)) -> tuple[Graph, Op, np.ndarray]:
    """One QUANTIZE (or DEQUANTIZE) between the two types, random scales and zero points (int16
    ones too, as an int16 SOFTMAX output has; int32 ones 0), and an input that spans the input
    type and reaches past the output's range."""
    def zp(dtype: str) -> int:
        if dtype in ("float32", "int32") or rng.integers(0, 3) == 0:
            return 0
        lo, hi = QRANGE[dtype]
        return int(rng.choice([lo, int(rng.integers(lo, hi + 1))]))

    if in_dtype == "float32":
        so = float(rng.uniform(1e-4, 0.05))
        ts_in, ts_out = Tensor("x", shape, "float32"), Tensor("y", shape, out_dtype,
                                                              qp(so, zp(out_dtype)))
        lo, hi = QRANGE[out_dtype]
        x = (rng.uniform(-1.2, 1.2, shape) * (hi - lo) * so).astype(np.float32)
        x.flat[:8] = (np.arange(-4, 4) + 0.5) * np.float32(so)  # near halves
    else:
        si = float(rng.uniform(1e-7, 1e-6)) if in_dtype == "int32" else float(
            rng.uniform(1e-4, 0.05))
        # int32 inputs shrink (a left shift of a full-range int32 would wrap); others either way.
        ratio = float(rng.uniform(2.0 ** 8, 2.0 ** 20)) if in_dtype == "int32" else float(
            np.exp(rng.uniform(np.log(0.05), np.log(20.0))))
        ts_in = Tensor("x", shape, in_dtype, qp(si, zp(in_dtype)))
        ts_out = (Tensor("y", shape, "float32") if kind == "DEQUANTIZE"
                  else Tensor("y", shape, out_dtype, qp(si * ratio, zp(out_dtype))))
        x = rand_values(rng, in_dtype, shape)
    op = Op("op", kind, ["x"], ["y"])
    g = Graph({"x": ts_in, "y": ts_out}, [op], ["x"], ["y"])
    verify(g)
    return g, op, x


def reference(g: Graph, op: Op, vals: list[np.ndarray]) -> np.ndarray:
    (y,) = get_op(op.kind).reference(g, op, vals)
    out = g.tensor(op.outputs[0])
    assert y.dtype == np.dtype(out.dtype) and y.shape == out.shape
    return y


def tflm_output(tflm: Any, g: Graph, feeds: list[np.ndarray]) -> np.ndarray:
    (y,) = tflm.run_tflm(write_tflite(g), feeds)
    return np.asarray(y).reshape(g.tensor(g.outputs[0]).shape)


def bits(y: np.ndarray) -> np.ndarray:
    """Integers as they are, floats as their bit patterns (so -0.0 != 0.0 and NaN == NaN)."""
    return y.view(np.uint32) if y.dtype == np.float32 else y


# ---------------------------------------------------------------------------------------------
# 1. reference == naive transcription
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", BINARY)
def test_binary_reference_equals_naive(kind: str) -> None:
    rng = np.random.default_rng(1300 + BINARY.index(kind))
    for case in range(25):
        g, op, (a, b) = binary_case(kind, rng)
        s1, s2, so = (g.tensor(n).scale for n in ("a", "b", "y"))
        act = op.attrs["activation"]
        want = n_mul(a, b, s1, s2, so, act) if kind == "MUL" else n_add_sub(kind, a, b, s1, s2,
                                                                            so, act)
        np.testing.assert_array_equal(reference(g, op, [a, b]), want.reshape(g.tensor("y").shape),
                                      err_msg=f"{kind} case {case}")


@pytest.mark.parametrize("pair", CONVERSIONS + (("int16", "float32"),), ids=str)
def test_conversion_reference_equals_naive(pair: tuple[str, str]) -> None:
    rng = np.random.default_rng(1310 + (CONVERSIONS + (("int16", "float32"),)).index(pair))
    kind = "DEQUANTIZE" if pair[1] == "float32" else "QUANTIZE"
    for case in range(6):
        g, op, x = convert_case(rng, *pair, kind=kind)
        xt, yt = g.tensor("x"), g.tensor("y")
        want = (n_dequantize(x, xt.scale, xt.zero_point) if kind == "DEQUANTIZE"
                else n_convert(x, xt, yt))
        np.testing.assert_array_equal(bits(reference(g, op, [x])), bits(want),
                                      err_msg=f"{pair} case {case}")


# ---------------------------------------------------------------------------------------------
# 2. reference == TFLM, and the int16-vs-int8 pins
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", BINARY)
def test_binary_reference_equals_tflm(kind: str, tflm: Any) -> None:
    rng = np.random.default_rng(1320 + BINARY.index(kind))
    for case in range(16):
        const_b = case % 4 == 3
        g, op, (a, b) = binary_case(kind, rng, const_b)
        feeds = [a] if const_b else [a, b]
        y = reference(g, op, [a, b])
        np.testing.assert_array_equal(y, tflm_output(tflm, g, feeds),
                                      err_msg=f"{kind} case {case}: {a.shape} with {b.shape}")


@pytest.mark.parametrize("pair", CONVERSIONS + (("int16", "float32"),), ids=str)
def test_conversion_reference_equals_tflm(pair: tuple[str, str], tflm: Any) -> None:
    rng = np.random.default_rng(1330 + (CONVERSIONS + (("int16", "float32"),)).index(pair))
    kind = "DEQUANTIZE" if pair[1] == "float32" else "QUANTIZE"
    for case in range(5):
        g, op, x = convert_case(rng, *pair, kind=kind)
        np.testing.assert_array_equal(bits(reference(g, op, [x])),
                                      bits(tflm_output(tflm, g, [x])),
                                      err_msg=f"{pair} case {case}")


# Scales and operands (found by a seeded search) where 20 bits of headroom round differently
# from 15 with no value wrapping: TFLM's int16 result, then what the int8 rule would give.
HEADROOM_CASES = {
    "ADD": ((0.0008245026, 0.0033624172, 0.0070816684), [-1577, -311, -244], [95, 726, 1373],
            [-139, 309, 624], [-138, 308, 623]),
    "SUB": ((0.00069768535, 0.0013775025, 0.0017987352), [-1905, -1603, -850], [749, 2038, 778],
            [-1313, -2183, -926], [-1312, -2182, -925]),
}


@pytest.mark.parametrize("kind", ["ADD", "SUB"])
def test_add_sub_headroom_is_15_bits(kind: str, tflm: Any) -> None:
    """TFLM's int16 ADD/SUB shift inputs left by 15, not int8's 20: the rounding of the rescaled
    inputs and the output multiplier change with it, and values of +-2^11 and more would wrap
    under 20. Under the int8 rule both cases below differ from TFLM; with 15 they agree."""
    (s1, s2, so), a_list, b_list, want, int8_rule = HEADROOM_CASES[kind]
    ts = {"a": Tensor("a", (3,), "int16", qp(s1)), "b": Tensor("b", (3,), "int16", qp(s2)),
          "y": Tensor("y", (3,), "int16", qp(so))}
    op = Op("op", kind, ["a", "b"], ["y"], {"activation": "NONE"})
    g = Graph(ts, [op], ["a", "b"], ["y"])
    verify(g)
    a, b = np.array(a_list, np.int16), np.array(b_list, np.int16)
    assert reference(g, op, [a, b]).tolist() == want
    assert tflm_output(tflm, g, [a, b]).tolist() == want
    assert n_add_sub(kind, a, b, s1, s2, so, "NONE", left_shift=20).tolist() == int8_rule

    rng = np.random.default_rng(1340)
    g, op, (a, b) = binary_case(kind, rng, shapes=((256,), (256,)))  # full-range values
    op.attrs["activation"] = "NONE"
    s1, s2, so = (g.tensor(n).scale for n in ("a", "b", "y"))
    theirs = tflm_output(tflm, g, [a, b])
    np.testing.assert_array_equal(reference(g, op, [a, b]), theirs)
    assert np.mean(n_add_sub(kind, a, b, s1, s2, so, "NONE", left_shift=20) != theirs) > 0.5


@pytest.mark.parametrize("kind", ["ADD", "SUB"])
def test_power_of_two_scales_take_the_general_path(kind: str, tflm: Any) -> None:
    """TFLite's own int16 ADD/SUB have a power-of-two path (a rounding shift of the finer input,
    then a saturating add) that TFLM never takes. With scales 2^-10, 2^-12 -> 2^-10 and
    5 + (-2) * 2^-2 = 4.5 that path rounds the shifted input alone (5 - 1 = 4); TFLM rounds the
    whole sum half away from zero (5)."""
    ts = {"a": Tensor("a", (4,), "int16", qp(2.0 ** -10)),
          "b": Tensor("b", (4,), "int16", qp(2.0 ** -12)),
          "y": Tensor("y", (4,), "int16", qp(2.0 ** -10))}
    op = Op("op", kind, ["a", "b"], ["y"], {"activation": "NONE"})
    g = Graph(ts, [op], ["a", "b"], ["y"])
    verify(g)
    sign = 1 if kind == "ADD" else -1
    a = np.array([5, -5, 3, 32767], np.int16)
    b = (sign * np.array([-2, 2, 6, 32767])).astype(np.int16)
    expected = [5, -5, 5, 32767]  # power-of-two path: [4, -4, 5, 32767]
    assert reference(g, op, [a, b]).tolist() == expected
    assert tflm_output(tflm, g, [a, b]).tolist() == expected


def test_int16_limits_and_activations(tflm: Any) -> None:
    """Results clamp to int16 and fused activations to their int16 units, not to int8's: MUL of
    two -32768 (a product of 2^30 at shift 0), RELU_N1_TO_1 at 1000 units per 1.0, and SUB
    saturating at -32768."""
    x = np.array([-32768, -32768, 500, -500, 20000, 1], np.int16)
    y = np.array([-32768, 32767, 5, 300, 20000, -1], np.int16)
    cases = [("MUL", (2.0 ** -15, 2.0 ** -15, 2.0 ** -15 * 1.5), "NONE"),
             ("MUL", (1e-3, 1e-3, 1e-3), "RELU_N1_TO_1"),
             ("ADD", (1e-3, 1e-3, 1e-3), "RELU_N1_TO_1"),
             ("SUB", (1e-3, 1e-3, 1e-3), "RELU6"),
             ("SUB", (1e-3, 2e-3, 1e-3), "NONE")]
    for kind, (s1, s2, so), act in cases:
        ts = {"a": Tensor("a", (6,), "int16", qp(s1)), "b": Tensor("b", (6,), "int16", qp(s2)),
              "y": Tensor("y", (6,), "int16", qp(so))}
        op = Op("op", kind, ["a", "b"], ["y"], {"activation": act})
        g = Graph(ts, [op], ["a", "b"], ["y"])
        verify(g)
        theirs = tflm_output(tflm, g, [x, y])
        np.testing.assert_array_equal(reference(g, op, [x, y]), theirs, err_msg=kind + act)
        assert theirs.min() < -128 or theirs.max() > 127, "a case outside int8's range"
    assert n_act_range("RELU_N1_TO_1", 1e-3, 0, I16_MIN, I16_MAX) == (-1000, 1000)


def test_conversions_pinned(tflm: Any) -> None:
    """Hand-worked values where the int16 types matter: float32 -> int16 beyond int8's +-256
    quotient clip, int16 -> int32 of a SOFTMAX-style output (zero point -32768) past int16's
    range, int8 -> int16 past int8's, int32 -> int16 shrinking by 2^16 with rounding."""
    def run(in_dtype: str, in_q: tuple[float, int] | None, out_dtype: str,
            out_q: tuple[float, int], x: list[Any]) -> list[Any]:
        xt = Tensor("x", (len(x),), in_dtype, qp(*in_q) if in_q else None)
        op = Op("op", "QUANTIZE", ["x"], ["y"])
        g = Graph({"x": xt, "y": Tensor("y", (len(x),), out_dtype, qp(*out_q))}, [op], ["x"],
                  ["y"])
        verify(g)
        arr = np.array(x, in_dtype)
        ours = reference(g, op, [arr])
        np.testing.assert_array_equal(ours, tflm_output(tflm, g, [arr]))
        return list(ours.tolist())

    # 2000.5 and -601.5 round away from zero; 4e6 clamps.
    assert run("float32", None, "int16", (0.5, 0), [1000.25, -300.75, 2e6, 0.25]) == \
        [2001, -602, 32767, 1]
    # (x + 32768) / 2: 65535 / 2 rounds up to 32768, an int32 beyond int16.
    assert run("int16", (2.0 ** -16, -32768), "int32", (2.0 ** -15, 0),
               [32767, -32768, 0]) == [32768, 0, 16384]
    # (x - 10) * 100
    assert run("int8", (0.1, 10), "int16", (0.001, 0), [127, -128, 11, 10]) == \
        [11700, -13800, 100, 0]
    # x / 2^16: 3.5 and -3.5 round away from zero; 2^15 clamps.
    assert run("int32", (2.0 ** -20, 0), "int16", (2.0 ** -4, 0),
               [3 * 65536 + 32768, -(3 * 65536 + 32768), (1 << 31) - 1]) == [4, -4, 32767]
    # x / 2 - 3 clamped to int8; the multiply (shift 0) rounds 2.5 to 3 but -2.5 to -2:
    # SaturatingRoundingDoublingHighMul's nudge rounds a negative half toward zero.
    assert run("int16", (0.25, 0), "int8", (0.5, -3), [5, -5, 1000]) == [0, -5, 127]


def test_dequantize_int16_pinned(tflm: Any) -> None:
    """int16 -> float32 keeps values far outside int8, exactly (the double product is exact)."""
    op = Op("op", "DEQUANTIZE", ["x"], ["y"])
    g = Graph({"x": Tensor("x", (3,), "int16", qp(0.1, -32768)),
               "y": Tensor("y", (3,), "float32")}, [op], ["x"], ["y"])
    verify(g)
    x = np.array([32767, -32768, 0], np.int16)
    ours = reference(g, op, [x])
    s = float(np.float32(0.1))
    assert ours.tolist() == [float(np.float32(s * 65535)), 0.0, float(np.float32(s * 32768))]
    np.testing.assert_array_equal(bits(ours), bits(tflm_output(tflm, g, [x])))


# ---------------------------------------------------------------------------------------------
# 4. Generated projects
# ---------------------------------------------------------------------------------------------

def chain_graph(rng: np.random.Generator) -> Graph:
    """float32 -> QUANTIZE -> int16 SUB (a 1-D operand broadcast, as SEANet's), requantize,
    MUL by a constant, ADD, SUB of a constant, then int16 -> int8 -> int16 -> int32 -> int16 ->
    float32; outputs at int8, int16 and float32."""
    h, w, c = (int(d) for d in rng.integers(2, 7, 3))
    shape = (1, h, w, c)

    def s16(name: str, scale: float, shp: tuple[int, ...] = shape,
            data: np.ndarray | None = None) -> Tensor:
        return Tensor(name, shp, "int16", qp(scale), data)

    sx = float(rng.uniform(1e-4, 1e-3))
    ts = {"f": Tensor("f", shape, "float32"), "x": s16("x", sx),
          "v": s16("v", sx * float(rng.uniform(0.05, 1.0)), (c,)),
          "t0": s16("t0", sx * 2), "t0b": s16("t0b", sx * float(rng.uniform(0.5, 3.0))),
          "k": s16("k", float(rng.uniform(1e-4, 1e-3)), (1, 1, 1, c),
                   rand_values(rng, "int16", (1, 1, 1, c))),
          "c": s16("c", sx, (1,), rand_values(rng, "int16", (1,)))}
    ts["t1"] = s16("t1", ts["t0b"].scale * ts["k"].scale * 32768 * float(rng.uniform(0.3, 3)))
    ts["t2"] = s16("t2", (ts["t1"].scale + sx) * float(rng.uniform(0.5, 2)))
    ts["t3"] = s16("t3", ts["t2"].scale * 2)
    # int8 keeps a quarter of t2's range; back to int16 and int32 with finer scales.
    ts["u8"] = Tensor("u8", shape, "int8", qp(ts["t2"].scale * 64, int(rng.integers(-20, 20))))
    ts["w16"] = Tensor("w16", shape, "int16", qp(ts["u8"].scale / 100, -5))
    ts["z32"] = Tensor("z32", shape, "int32", qp(ts["w16"].scale / 1000, 0))
    ts["r16"] = s16("r16", ts["w16"].scale)
    ts["out"] = Tensor("out", shape, "float32")
    # Mostly no activation, so that values stay varied through the chain.
    act = [str(a) for a in rng.choice(ACTS, 4, p=[0.55, 0.15, 0.15, 0.15])]
    ops = [Op("q_in", "QUANTIZE", ["f"], ["x"]),
           Op("sub", "SUB", ["x", "v"], ["t0"], {"activation": act[0]}),
           Op("requant", "QUANTIZE", ["t0"], ["t0b"]),
           Op("mul", "MUL", ["t0b", "k"], ["t1"], {"activation": act[1]}),
           Op("add", "ADD", ["t1", "x"], ["t2"], {"activation": act[2]}),
           Op("sub_c", "SUB", ["t2", "c"], ["t3"], {"activation": act[3]}),
           Op("to8", "QUANTIZE", ["t2"], ["u8"]),
           Op("to16", "QUANTIZE", ["u8"], ["w16"]),
           Op("to32", "QUANTIZE", ["w16"], ["z32"]),
           Op("back16", "QUANTIZE", ["z32"], ["r16"]),
           Op("deq", "DEQUANTIZE", ["r16"], ["out"])]
    g = Graph(ts, ops, ["f", "v"], ["u8", "t3", "out"])
    verify(g)
    return g


def chain_cases(g: Graph, rng: np.random.Generator, n: int) -> list[list[np.ndarray]]:
    """Inputs spanning x's whole int16 range (random_inputs would stay within int8's)."""
    x, f = g.tensor("x"), g.tensor("f")
    return [[(rng.uniform(-1.1, 1.1, f.shape) * 32768 * x.scale).astype(np.float32),
             rand_values(rng, "int16", g.tensor("v").shape)] for _ in range(n)]


@pytest.mark.parametrize("seed", range(3))
def test_generated_c_equals_reference_and_tflm(seed: int, tflm: Any) -> None:
    from tinyengine.verify import verify_graph

    rng = np.random.default_rng(1370 + seed)
    g = chain_graph(rng)
    verdicts, _ = verify_graph(g, write_tflite(g), given=chain_cases(g, rng, 5), n_random=2,
                               seed=seed)
    assert len(verdicts) == 3 and all(v.exact for v in verdicts), [v.line(0) for v in verdicts]


@pytest.mark.parametrize("model", sorted(SEANET_HEADS))
def test_seanet_models_equal_tflm_within_its_arena(model: str, shared_models: Path,
                                                   tflm: Any) -> None:
    """SEANet's int16 ADD, SUB (a 64-vector input broadcast over 1x2x12x64) and QUANTIZE
    (int32 -> int16): compiled, bit-exact with TFLM on 20 random inputs, arena within TFLM's
    head (activations: add0 1280 B, sub0 3200 B, quantize0 2560 B, each with one in-place
    output, against 1920, 6272 and 3840)."""
    from tinyengine.verify import verify_model

    verdicts, report = verify_model(shared_models / model, n_random=20)
    assert all(v.exact and v.max_diff_tflm == 0 for v in verdicts), \
        [v.line(report["arena_bytes"]) for v in verdicts]
    assert report["arena_bytes"] <= SEANET_HEADS[model]


def test_sanitized_build_matches_reference(tmp_path: Path) -> None:
    from tinyengine.codegen import compile_graph

    rng = np.random.default_rng(1380)
    g = chain_graph(rng)
    compile_graph(g, tmp_path / "p", prefix="a16")
    check_sanitized_demo(tmp_path / "p", "a16", g, chain_cases(g, rng, 3))


# ---------------------------------------------------------------------------------------------
# 5. Refusals name the op and the tensor
# ---------------------------------------------------------------------------------------------

def _binary(kind: str, qa: QuantParams, qb: QuantParams, qo: QuantParams,
            dtypes: tuple[str, str, str] = ("int16",) * 3) -> Graph:
    ts = {"a": Tensor("a", (4,), dtypes[0], qa), "b": Tensor("b", (4,), dtypes[1], qb),
          "y": Tensor("y", (4,), dtypes[2], qo)}
    return Graph(ts, [Op("op7", kind, ["a", "b"], ["y"], {"activation": "NONE"})], ["a", "b"],
                 ["y"])


def _convert(kind: str, in_dtype: str, in_q: QuantParams | None, out_dtype: str,
             out_q: QuantParams | None) -> Graph:
    ts = {"x": Tensor("x", (4,), in_dtype, in_q), "y": Tensor("y", (4,), out_dtype, out_q)}
    return Graph(ts, [Op("op7", kind, ["x"], ["y"])], ["x"], ["y"])


REFUSALS = [
    ("add_zero_point", lambda: _binary("ADD", qp(0.01, 3), qp(0.01), qp(0.02)),
     ["op7", "ADD", "tensor a", "zero point 3"]),
    ("sub_zero_point", lambda: _binary("SUB", qp(0.01), qp(0.01), qp(0.02, -1)),
     ["op7", "SUB", "tensor y", "zero point -1"]),
    ("mul_zero_point", lambda: _binary("MUL", qp(0.01), qp(0.01, 7), qp(0.02)),
     ["op7", "MUL", "tensor b", "zero point 7"]),
    ("mixed_types", lambda: _binary("ADD", qp(0.01), qp(0.01), qp(0.02),
                                    ("int16", "int8", "int16")),
     ["op7", "ADD", "tensor b", "int8"]),
    ("mul_shift", lambda: _binary("MUL", qp(0.5), qp(0.5), qp(0.1)),
     ["op7", "MUL", "output y", "below 2^0"]),
    ("add_rescale", lambda: _binary("ADD", qp(1.0), qp(1.0), qp(2.0 ** -15)),
     ["op7", "ADD", "output y", "too small"]),
    ("sub_rescale", lambda: _binary("SUB", qp(1.0), qp(1.0), qp(2.0 ** -15)),
     ["op7", "SUB", "output y", "2^15"]),
    ("int32_zero_point", lambda: _convert("QUANTIZE", "int32", qp(1e-6, 4), "int16", qp(0.01)),
     ["op7", "QUANTIZE", "tensor x", "zero point 4", "int32"]),
    ("int32_output_zero_point",
     lambda: _convert("QUANTIZE", "int16", qp(1e-3), "int32", qp(1e-4, -1)),
     ["op7", "QUANTIZE", "tensor y", "zero point -1"]),
    ("int32_to_int32", lambda: _convert("QUANTIZE", "int32", qp(1e-6), "int32", qp(1e-5)),
     ["op7", "QUANTIZE", "output y", "int32", "int8 or int16"]),
    ("float_to_int32", lambda: _convert("QUANTIZE", "float32", None, "int32", qp(1e-5)),
     ["op7", "QUANTIZE", "tensor y", "int32"]),
    ("dequantize_int32", lambda: _convert("DEQUANTIZE", "int32", qp(1e-5), "float32", None),
     ["op7", "DEQUANTIZE", "tensor x", "int32"]),
]


@pytest.mark.parametrize("name,make,words", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_name_the_op_and_the_tensor(name: str, make: Any, words: list[str]) -> None:
    with pytest.raises(UnsupportedError) as err:
        verify(make())
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message, (name, message)
