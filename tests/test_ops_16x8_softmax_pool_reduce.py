"""int16 SOFTMAX (int16 -> int16 and int8 -> int16), AVERAGE_POOL_2D, MAX_POOL_2D, MEAN and SUM.

1. SOFTMAX int16 is a new algorithm (two interpolated tables built in float at TFLM's Prepare):
   the tables against a naive scalar build with the C library's expf (as TFLM's), and the
   reference against a naive scalar SoftmaxInt16.
2. C == reference == TFLM (verify_graph on one-op graphs through the TFLite writer) on seeded
   random cases of each op.
3. The int16-vs-int8 differences pinned with values the int8 rule gets wrong.
4. One generated project chaining every int16 op of these tests (and of
   test_ops_16x8_activations.py) bit for bit with TFLM and clean under ASan/UBSan.
5. Refusals name op and tensor; the C entry points check their arguments.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinyengine import fixedpoint as fp
from tinyengine import quant
from tinyengine.errors import UnsupportedError
from tinyengine.ir import Graph, Op, QuantParams, Tensor, verify
from tinyengine.ops import get_op
from tinyengine.ops.softmax import (
    exp_lut,
    one_over_one_plus_x_lut,
    softmax_int16_params,
    softmax_params,
)
from tinyengine.reference import run_reference

from . import ckernels
from .test_ops_16x8_activations import Q15, c_ref_tflm_exact, tflm_answer
from .test_ops_dw_fc_add import n_mbqm, n_quantize_multiplier

TE_OK, TE_ERR_ARG = 0, 1
SOFTMAX_OUT = {("int8", "int8"): (1 / 256, -128), ("int8", "int16"): (1 / 65536, -32768),
               ("int16", "int16"): (Q15, 0)}


def qp(scale: float, zp: int = 0) -> QuantParams:
    return QuantParams(np.array([scale], np.float32), np.array([zp], np.int64))


def one_op(kind: str, x: Tensor, y: Tensor, attrs: dict[str, Any]) -> Graph:
    return Graph({"x": x, "y": y}, [Op("op0", kind, ["x"], ["y"], attrs)], ["x"], ["y"],
                 name=kind.lower())


def softmax_graph(shape: tuple[int, ...], in_dtype: str, s_in: float, zp_in: int,
                  out_dtype: str, beta: float = 1.0, out_scale: float | None = None) -> Graph:
    s_out, zp_out = SOFTMAX_OUT[(in_dtype, out_dtype)]
    return one_op("SOFTMAX", Tensor("x", shape, in_dtype, qp(s_in, zp_in)),
                  Tensor("y", shape, out_dtype, qp(out_scale or s_out, zp_out)), {"beta": beta})


def rand(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape).astype(dtype)


# ---------------------------------------------------------------------------------------------
# 1. SOFTMAX int16: naive tables (LUTPopulateInt16<float>) and SoftmaxInt16
# ---------------------------------------------------------------------------------------------

def c_expf() -> Any:
    name = ctypes.util.find_library("m")
    if name is None:
        pytest.skip("no C math library to take expf from")
    libm = ctypes.CDLL(name)
    libm.expf.restype, libm.expf.argtypes = ctypes.c_float, [ctypes.c_float]
    return libm.expf


def n_roundf(x: float) -> float:
    """roundf on a float32 value (exact in float64): half away from zero."""
    r = float(np.floor(abs(x)))
    r += 1.0 if abs(x) - r >= 0.5 else 0.0
    return r if x >= 0 else -r


def n_lut(in_scale: float, in_zp: int, fn: Any) -> list[int]:
    """LUTPopulateInt16<float> with output scale 2/65535, zero point 0; every operation
    rounded to float32 on its own."""
    f = np.float32
    in_min, in_max = f(f(in_scale) * f(-32768 - in_zp)), f(f(in_scale) * f(32767 - in_zp))
    out_scale = f(f(2.0) / f(65535.0))
    inv = f(f(65536.0) / f(f(out_scale * f(32767.0)) - f(out_scale * f(-32768.0))))
    step = f(f(in_max - in_min) / f(512.0))
    table = []
    for i in range(512):
        at = f(in_min + f(f(i) * step))
        val, mid, nxt = fn(at), fn(f(at + f(step / f(2.0)))), fn(f(in_min + f(f(i + 1) * step)))
        sample = n_roundf(float(f(val * inv)))
        interp = n_roundf(float(f(f(f(nxt * inv) + f(sample)) / f(2.0))))
        bias = n_roundf(float(f(f(f(interp) - f(n_roundf(float(f(mid * inv))))) / f(2.0))))
        table.append(int(min(max(sample - bias, -32768.0), 32767.0)))
    table.append(int(min(max(n_roundf(float(f(fn(in_max) * inv))), -32768.0), 32767.0)))
    return table


def test_softmax_tables_match_a_build_with_the_c_library():
    expf = c_expf()
    f = np.float32
    exp_table = n_lut(float(f(f(10.0) / f(65535.0))), 32767, lambda v: f(expf(float(v))))
    recip_table = n_lut(float(f(f(1.0) / f(65535.0))), -32768,
                        lambda v: f(f(1.0) / f(f(1.0) + v)))
    assert exp_lut().tolist() == exp_table
    assert one_over_one_plus_x_lut().tolist() == recip_table
    # Pinned ends: exp(-10) -> 2 (of 32768), exp(0) and 1 / (1 + 0) saturate at 32767, and
    # 1 / (1 + 1) is 16384.
    assert exp_table[0] == 2 and exp_table[512] == 32767
    assert recip_table[0] == 32767 and recip_table[512] == 16384


def n_lut_lookup(value: int, table: np.ndarray) -> int:
    index = 256 + (value >> 7)
    slope = int(np.int16(int(table[index + 1]) - int(table[index])))
    return int(np.int16(int(table[index]) + ((slope * (value & 0x7F) + 64) >> 7)))


def n_softmax_int16_row(row: list[int], multiplier: int, shift: int) -> list[int]:
    top = max(row)
    exps = [n_lut_lookup(min(max(n_mbqm(v - top, multiplier, shift) + 32767, -32768), 32767),
                         exp_lut()) for v in row]
    total = sum(exps)
    headroom = 32 - total.bit_length()  # CountLeadingZeros of a positive int32
    shifted = ((total << (headroom - 1)) + (1 << 13)) >> 14
    recip = n_lut_lookup(min(max(shifted - 98304, -32768), 32767), one_over_one_plus_x_lut())
    right = 31 - headroom
    return [min(max((e * recip + (1 << (right - 1))) >> right, 0), 32767) for e in exps]


def test_softmax_int16_reference_matches_naive():
    rng = np.random.default_rng(1616)
    for trial in range(12):
        s_in, beta = float(10 ** rng.uniform(-5, -1)), float(rng.choice([1.0, 0.5, 2.3]))
        shape = [(1, 10), (3, 7), (2, 2, 40), (4, 1)][trial % 4]
        graph = softmax_graph(shape, "int16", s_in, 0, "int16", beta)
        verify(graph)
        m, shift = n_quantize_multiplier(float(np.float32(s_in)) * float(np.float32(beta))
                                         / (10.0 / 65535.0))
        assert softmax_int16_params(graph.ops[0], s_in, beta) == (m, shift)
        x = rand(rng, shape, "int16")
        if trial % 3 == 0:
            x = (x // 256).astype(np.int16)  # rows of close values
        want = [n_softmax_int16_row(r, m, shift) for r in x.reshape(-1, shape[-1]).tolist()]
        np.testing.assert_array_equal(run_reference(graph, [x])[0].reshape(-1, shape[-1]),
                                      want, err_msg=f"case {trial}")


# ---------------------------------------------------------------------------------------------
# 2. C == reference == TFLM on seeded random one-op graphs
# ---------------------------------------------------------------------------------------------

def random_softmax(rng: np.random.Generator, in_dtype: str) -> Graph:
    shape = [(1, 10), (3, 7), (2, 4, 33), (5, 2)][int(rng.integers(4))]
    s_in = float(10 ** rng.uniform(-5, -1)) if in_dtype == "int16" else \
        float(10 ** rng.uniform(-2.5, 0))
    zp = 0 if in_dtype == "int16" else int(rng.integers(-128, 128))
    base = SOFTMAX_OUT[(in_dtype, "int16")][0]
    out_scale = base * float(rng.choice([1.0, 1.0009, 0.9991]))  # TFLM allows 0.1%
    return softmax_graph(shape, in_dtype, s_in, zp, "int16", float(rng.choice([1.0, 0.6, 2.0])),
                         out_scale)


def random_pool(rng: np.random.Generator, kind: str) -> Graph:
    fh, fw = (int(v) for v in rng.integers(1, 4, 2))
    sh, sw = (int(v) for v in rng.integers(1, 3, 2))
    shape = (int(rng.integers(1, 3)), int(rng.integers(fh, 9)), int(rng.integers(fw, 9)),
             int(rng.integers(1, 6)))
    s = float(10 ** rng.uniform(-4, -1))
    attrs = {"filter": (fh, fw), "stride": (sh, sw), "padding": str(rng.choice(["SAME", "VALID"])),
             "activation": str(rng.choice(["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]))}
    x = Tensor("x", shape, "int16", qp(s))
    graph = one_op(kind, x, Tensor("y", (1,), "int16", qp(s)), attrs)
    graph.tensors["y"].shape = get_op(kind).infer_shapes(graph, graph.ops[0])[0]
    return graph


def random_reduce(rng: np.random.Generator, kind: str) -> Graph:
    rank = int(rng.integers(1, 5))
    shape = tuple(int(v) for v in rng.integers(1, 7, rank))
    axes = tuple(sorted({int(a) for a in rng.integers(-rank, rank, int(rng.integers(1, 3)))}))
    s_in = float(10 ** rng.uniform(-4, -1))
    s_out = s_in * float(10 ** rng.uniform(-0.5, 0.5)) * (1.0 if kind == "MEAN" else 4.0)
    attrs = {"axes": axes, "keep_dims": bool(rng.integers(2))}
    graph = one_op(kind, Tensor("x", shape, "int16", qp(s_in)),
                   Tensor("y", (1,), "int16", qp(s_out)), attrs)
    graph.tensors["y"].shape = get_op(kind).infer_shapes(graph, graph.ops[0])[0]
    return graph


CASES = {
    "SOFTMAX_s16": lambda rng: random_softmax(rng, "int16"),
    "SOFTMAX_s8_s16": lambda rng: random_softmax(rng, "int8"),
    "AVERAGE_POOL_2D": lambda rng: random_pool(rng, "AVERAGE_POOL_2D"),
    "MAX_POOL_2D": lambda rng: random_pool(rng, "MAX_POOL_2D"),
    "MEAN": lambda rng: random_reduce(rng, "MEAN"),
    "SUM": lambda rng: random_reduce(rng, "SUM"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_c_reference_tflm_random_graphs(tflm, case):
    rng = np.random.default_rng(sum(map(ord, case)))
    for trial in range(4):
        graph = CASES[case](rng)
        verify(graph)
        c_ref_tflm_exact(graph, [], n_random=3, seed=trial)


# ---------------------------------------------------------------------------------------------
# 3. int16 against int8: the differences, pinned
# ---------------------------------------------------------------------------------------------

def test_softmax_int8_to_int16_uses_16_output_bits(tflm):
    # keyword_scrambled's last op: int8 logits (scale 0.06996273, zero point 2) to int16
    # probabilities (scale 1.5259022e-05 ~ 1/65535, zero point -32768). The int8 rule (8 output
    # bits, offset -128) would answer [127, -128] and [0, 0] here.
    graph = softmax_graph((2, 2), "int8", 0.06996273, 2, "int16", out_scale=1.5259022e-05)
    verify(graph)
    x = np.array([[127, -128], [5, 5]], np.int8)
    want = np.array([[32767, -32768], [0, 0]], np.int16)
    np.testing.assert_array_equal(run_reference(graph, [x])[0], want)
    np.testing.assert_array_equal(tflm_answer(tflm, graph, [x]).reshape(2, 2), want)
    # Every pair of int8 logits of that model's softmax, against TFLM.
    pairs = np.stack(np.meshgrid(np.arange(-128, 128), np.arange(-128, 128)), -1)
    pairs = pairs.reshape(-1, 2).astype(np.int8)
    big = softmax_graph(pairs.shape, "int8", 0.06996273, 2, "int16", out_scale=1.5259022e-05)
    np.testing.assert_array_equal(run_reference(big, [pairs])[0],
                                  tflm_answer(tflm, big, [pairs]).reshape(pairs.shape))


def int8_rule_softmax16(x: np.ndarray, s_in: float, beta: float) -> np.ndarray:
    """The int8 algorithm (gemmlowp exp, Q12.19 sum, GetReciprocal) on int16 rows, rounded to
    Q0.15: what the int16 path would give if it were the int8 one."""
    m, shift, diff_min = softmax_params(Op("s", "SOFTMAX", [], []), s_in, beta)
    rows = x.reshape(-1, x.shape[-1]).astype(np.int64)
    diff = rows - rows.max(axis=1, keepdims=True)
    exps = fp.exp_on_negative_values(
        quant.multiply_by_quantized_multiplier_greater_than_one(diff, m, shift), 5)
    exps = np.where(diff >= diff_min, exps, 0)
    total = quant._wrap32(fp.rescale(exps, 0, 12).sum(axis=1))
    scale, bits = fp.get_reciprocal(total, 12)
    prob = fp.rounding_divide_by_pot(fp.mul(scale[:, None], exps), (bits + 16)[:, None])
    return np.clip(prob, 0, 32767).reshape(x.shape)


def test_softmax_int16_is_not_the_int8_algorithm(tflm):
    rng = np.random.default_rng(77)
    s_in = 3e-4
    graph = softmax_graph((64, 16), "int16", s_in, 0, "int16")
    x = (rand(rng, (64, 16), "int16") // 8).astype(np.int16)
    want = tflm_answer(tflm, graph, [x]).reshape(64, 16)
    np.testing.assert_array_equal(run_reference(graph, [x])[0], want)
    assert np.count_nonzero(int8_rule_softmax16(x, s_in, 1.0) != want) > 50


def test_pooling_int16_range(tflm):
    # MAX_POOL starts from -32768 (the int8 rule starts from -128 and would answer -128 for a
    # window of values below it); AVERAGE_POOL's sums and RELU6's six live in int16 units.
    x = np.array([-30000, -20000, 5000, 12000, -200, -150, 7001, 9000], np.int16)
    x = x.reshape(1, 2, 4, 1)
    attrs = {"filter": (2, 2), "stride": (2, 2), "padding": "VALID", "activation": "NONE"}
    for kind, act, want in (("MAX_POOL_2D", "NONE", [-150, 12000]),
                            ("AVERAGE_POOL_2D", "NONE", [-12588, 8250]),
                            ("AVERAGE_POOL_2D", "RELU6", [0, 6000])):
        graph = one_op(kind, Tensor("x", (1, 2, 4, 1), "int16", qp(1e-3)),
                       Tensor("y", (1, 1, 2, 1), "int16", qp(1e-3)), attrs | {"activation": act})
        verify(graph)
        got = run_reference(graph, [x])[0].ravel().tolist()
        assert got == want, (kind, act, got)
        assert tflm_answer(tflm, graph, [x]).ravel().tolist() == want


def test_mean_int16_range_and_int32_wrap(tflm):
    # Outputs beyond int8's range; and over 70000 values of 32767 the int32 sum wraps (TFLM's
    # accumulator does: 2293690000 - 2^32), which no int8 reduction of this size reaches.
    graph = one_op("MEAN", Tensor("x", (1, 4), "int16", qp(1e-3)),
                   Tensor("y", (1,), "int16", qp(1e-3)), {"axes": (1,), "keep_dims": False})
    x = np.array([[1000, 3000, -200, 20001]], np.int16)
    # 23801 / 4 = 5950.25, but TFLite's double rounding says 5951: the multiplier 2^30 with
    # shift -1 first halves to 11900.5 -> 11901, then halves again to 5950.5 -> 5951.
    assert run_reference(graph, [x])[0].tolist() == [5951]
    assert tflm_answer(tflm, graph, [x]).ravel().tolist() == [5951]
    for kind, s_out, want in (("MEAN", 0.02, -14295), ("SUM", 50.0, -32768)):
        graph = one_op(kind, Tensor("x", (1, 70000), "int16", qp(0.01)),
                       Tensor("y", (1, 1), "int16", qp(s_out)), {"axes": (1,), "keep_dims": True})
        x = np.full((1, 70000), 32767, np.int16)
        assert run_reference(graph, [x])[0].ravel().tolist() == [want]
        assert tflm_answer(tflm, graph, [x]).ravel().tolist() == [want]
        c_ref_tflm_exact(graph, [[x]], n_random=1)


# ---------------------------------------------------------------------------------------------
# 4. One project with every int16 op: C == reference == TFLM, and under ASan/UBSan
# ---------------------------------------------------------------------------------------------

def chain16() -> Graph:
    """x (int16) -> LEAKY_RELU -> AVERAGE_POOL -> MAX_POOL, then LOGISTIC -> SUM and
    TANH -> MEAN -> SOFTMAX (int16); x -> RELU -> RELU6; z (int8) -> SOFTMAX (int16 out).
    Negative values reach every op that has a branch for them."""
    s0 = 1 / 2048
    t: dict[str, Tensor] = {}

    def ten(name: str, shape: tuple[int, ...], scale: float, dtype: str = "int16",
            zp: int = 0) -> str:
        t[name] = Tensor(name, shape, dtype, qp(scale, zp))
        return name

    shape, pooled, maxed = (1, 8, 10, 6), (1, 4, 5, 6), (1, 3, 4, 6)
    ops = [Op("leaky", "LEAKY_RELU", [ten("x", shape, s0)], [ten("b", shape, s0 * 0.9)],
              {"alpha": 0.2}),
           Op("avg", "AVERAGE_POOL_2D", ["b"], [ten("d", pooled, s0 * 0.9)],
              {"filter": (3, 3), "stride": (2, 2), "padding": "SAME", "activation": "NONE"}),
           Op("max", "MAX_POOL_2D", ["d"], [ten("e", maxed, s0 * 0.9)],
              {"filter": (2, 2), "stride": (1, 1), "padding": "VALID", "activation": "NONE"}),
           Op("logistic", "LOGISTIC", ["e"], [ten("f", maxed, Q15)]),
           Op("sum", "SUM", ["f"], [ten("i", (1, 4), Q15 * 8)],
              {"axes": (1, 3), "keep_dims": False}),  # two reduced runs: the general kernel
           Op("tanh", "TANH", ["e"], [ten("g", maxed, Q15)]),
           Op("mean", "MEAN", ["g"], [ten("h", (1, 6), Q15 * 0.7)],
              {"axes": (1, 2), "keep_dims": False}),
           Op("softmax16", "SOFTMAX", ["h"], [ten("k", (1, 6), Q15)], {"beta": 1.0}),
           Op("relu", "RELU", ["x"], [ten("a", shape, s0 * 1.3)]),
           Op("relu6", "RELU6", ["a"], [ten("c", shape, s0 * 1.3)]),
           Op("softmax8", "SOFTMAX", [ten("z", (3, 5), 0.1, "int8", 3)],
              [ten("w", (3, 5), 1 / 65536, "int16", -32768)], {"beta": 1.0})]
    return Graph(t, ops, ["x", "z"], ["k", "i", "c", "w"], name="chain16")


def test_chain_matches_tflm(tflm):
    graph = chain16()
    verify(graph)
    assert [get_op(op.kind).kernel(graph, op) for op in graph.ops] == [
        "te_leaky_relu_s16", "te_avgpool_s16", "te_maxpool_s16", "te_logistic_s16",
        "te_reduce_s16", "te_tanh_s16", "te_mean_s16", "te_softmax_s16", "te_relu_s16",
        "te_relu6_s16", "te_softmax_s8_s16"]
    c_ref_tflm_exact(graph, [], n_random=6, seed=5)


def test_chain_clean_under_sanitizers(tmp_path: Path):
    from tinyengine.codegen import compile_graph

    from .sanitized import check_sanitized_demo

    graph = chain16()
    compile_graph(graph, tmp_path / "p", prefix="c16")
    rng = np.random.default_rng(6)
    cases = [[rand(rng, (1, 8, 10, 6), "int16"), rand(rng, (3, 5), "int8")] for _ in range(4)]
    check_sanitized_demo(tmp_path / "p", "c16", graph, cases)


# ---------------------------------------------------------------------------------------------
# 5. Refusals and the C entry points' argument checks
# ---------------------------------------------------------------------------------------------

def refused(graph: Graph, *needles: str) -> None:
    with pytest.raises(UnsupportedError) as e:
        verify(graph)
    for needle in needles:
        assert needle in str(e.value), (needle, str(e.value))


def test_int16_refusals_name_op_and_tensor():
    g = softmax_graph((1, 4), "int16", 1e-3, 0, "int16")
    g.tensors["y"] = Tensor("y", (1, 4), "int8", qp(1 / 256, -128))
    refused(g, "op op0 (SOFTMAX)", "input x is int16 and output y is int8")
    refused(softmax_graph((1, 4), "int16", 1e-3, 0, "int16", out_scale=1 / 32000),
            "op op0 (SOFTMAX)", "output y", "1/32768")
    g = softmax_graph((1, 4), "int8", 0.1, 0, "int16")
    g.tensors["y"].quant = qp(1 / 65536, 0)
    refused(g, "op op0 (SOFTMAX)", "output y", "zero point -32768")
    refused(softmax_graph((1, 70000), "int16", 1e-3, 0, "int16"), "op op0 (SOFTMAX)",
            "input x", "70000")
    g = softmax_graph((1, 4), "int16", 1e-3, 0, "int16")
    g.tensors["x"].quant = qp(1e-3, 4)
    refused(g, "op op0 (SOFTMAX)", "tensor x", "zero point 4")
    big = {"filter": (256, 256), "stride": (1, 1), "padding": "VALID", "activation": "NONE"}
    refused(one_op("AVERAGE_POOL_2D", Tensor("x", (1, 256, 256, 1), "int16", qp(1e-3)),
                   Tensor("y", (1, 1, 1, 1), "int16", qp(1e-3)), big),
            "op op0 (AVERAGE_POOL_2D)", "input x", "int32 accumulator")
    refused(one_op("MEAN", Tensor("x", (2, 3), "int16", qp(1e-3)),
                   Tensor("y", (2,), "int8", qp(1e-3)), {"axes": (1,), "keep_dims": False}),
            "op op0 (MEAN)", "tensor y is int8 where x is int16")
    refused(one_op("MAX_POOL_2D", Tensor("x", (1, 2, 2, 1), "int16", qp(1e-3)),
                   Tensor("y", (1, 1, 1, 1), "int16", qp(2e-3)),
                   big | {"filter": (2, 2)}), "op op0 (MAX_POOL_2D)", "share")


CDEF = """
typedef enum { TE_OK = 0, TE_ERR_ARG = 1, TE_ERR_SCRATCH = 2 } te_status_t;
typedef struct { int32_t n; int32_t h; int32_t w; int32_t c; } te_dims_t;
typedef struct { int32_t input_offset; int32_t output_offset; int32_t act_min; int32_t act_max; }
    te_quant_t;
typedef struct { int32_t outer; int32_t depth; int32_t input_multiplier;
                 int32_t input_left_shift; int32_t diff_min; } te_softmax_params_t;
typedef struct { int32_t outer; int32_t depth; int32_t input_multiplier; int32_t input_shift; }
    te_softmax_s16_params_t;
typedef struct { te_dims_t input; te_dims_t output; int32_t filter_h; int32_t filter_w;
                 int32_t stride_h; int32_t stride_w; int32_t pad_h; int32_t pad_w;
                 int32_t act_min; int32_t act_max; } te_pool_params_t;
typedef struct { te_dims_t input; te_dims_t output; te_quant_t q; int32_t multiplier;
                 int32_t shift; } te_mean_params_t;
typedef struct { int32_t rank; int32_t dims[8]; int32_t reduced[8]; te_quant_t q;
                 int32_t multiplier; int32_t shift; } te_reduce_params_t;
te_status_t te_softmax_s8_s16(const te_softmax_params_t *p, const int8_t *input,
                              int16_t *output);
te_status_t te_softmax_s16(const te_softmax_s16_params_t *p, const int16_t *input,
                           const int16_t *exp_lut, const int16_t *recip_lut, int16_t *output);
te_status_t te_avgpool_s16(const te_pool_params_t *p, const int16_t *input, int16_t *output);
te_status_t te_maxpool_s16(const te_pool_params_t *p, const int16_t *input, int16_t *output);
te_status_t te_mean_s16(const te_mean_params_t *p, const int16_t *input, int16_t *output);
te_status_t te_reduce_s16(const te_reduce_params_t *p, const int16_t *input, int16_t *output);
te_status_t te_reduce_wrapper_s16(const te_reduce_params_t *p, const int16_t *input,
                                  int16_t *output);
"""


@pytest.fixture(scope="module")
def kernels() -> tuple[Any, Any]:
    return ckernels.build(["te_softmax.h", "te_pool.h", "te_reduce.h"],
                          ["te_softmax.c", "te_pool.c", "te_reduce.c"], CDEF)


def test_s16_kernels_refuse_arguments_outside_their_domain(kernels):
    ffi, lib = kernels
    buf = np.zeros(1 << 16, np.int16)
    x, y = ffi.from_buffer("int16_t[]", buf), ffi.from_buffer("int16_t[]", buf.copy())
    exp_t = ffi.from_buffer("int16_t[]", np.ascontiguousarray(exp_lut()))
    rec_t = ffi.from_buffer("int16_t[]", np.ascontiguousarray(one_over_one_plus_x_lut()))

    def softmax16(**over: int) -> int:
        p = dict(outer=1, depth=4, input_multiplier=1 << 30, input_shift=1) | over
        return lib.te_softmax_s16(ffi.new("te_softmax_s16_params_t *", p), x, exp_t, rec_t, y)

    assert softmax16() == TE_OK
    assert softmax16(depth=65537) == TE_ERR_ARG
    assert softmax16(input_shift=31) == TE_ERR_ARG
    assert lib.te_softmax_s16(ffi.new("te_softmax_s16_params_t *", [1, 4, 1 << 30, 1]), x,
                              ffi.NULL, rec_t, y) == TE_ERR_ARG
    zeros = ffi.from_buffer("int16_t[]", np.zeros(513, np.int16))  # sums of exps below 2
    assert lib.te_softmax_s16(ffi.new("te_softmax_s16_params_t *", [1, 4, 1 << 30, 1]), x,
                              zeros, rec_t, y) == TE_ERR_ARG
    x8 = ffi.from_buffer("int8_t[]", np.zeros(4, np.int8))
    sp = ffi.new("te_softmax_params_t *", [1, 4, 1 << 30, 5, -100])
    assert lib.te_softmax_s8_s16(sp, x8, y) == TE_OK
    assert lib.te_softmax_s8_s16(sp, x8, ffi.NULL) == TE_ERR_ARG

    def pool(fn: Any, **over: Any) -> int:
        p = dict(input=[1, 4, 4, 1], output=[1, 2, 2, 1], filter_h=2, filter_w=2, stride_h=2,
                 stride_w=2, pad_h=0, pad_w=0, act_min=-32768, act_max=32767) | over
        return fn(ffi.new("te_pool_params_t *", p), x, y)

    for fn in (lib.te_avgpool_s16, lib.te_maxpool_s16):
        assert pool(fn) == TE_OK
        assert pool(fn, act_max=32768) == TE_ERR_ARG
        assert pool(fn, act_min=-32769) == TE_ERR_ARG
    # An average over more than 65535 pixels could overflow int32: refused (TFLite's would).
    assert pool(lib.te_avgpool_s16, input=[1, 256, 256, 1], output=[1, 1, 1, 1], filter_h=256,
                filter_w=256) == TE_ERR_ARG
    assert pool(lib.te_avgpool_s16, input=[1, 255, 257, 1], output=[1, 1, 1, 1], filter_h=255,
                filter_w=257) == TE_OK
    q = [0, 0, -32768, 32767]
    mean = ffi.new("te_mean_params_t *", [[1, 4, 4, 1], [1, 1, 1, 1], q, 1 << 30, -3])
    assert lib.te_mean_s16(mean, x, y) == TE_OK
    mean.q.act_max = 32768
    assert lib.te_mean_s16(mean, x, y) == TE_ERR_ARG
    red = ffi.new("te_reduce_params_t *", [2, [4, 4] + [0] * 6, [0, 1] + [0] * 6, q, 1 << 30, -2])
    assert lib.te_reduce_s16(red, x, y) == TE_OK
    assert lib.te_reduce_wrapper_s16(red, x, y) == TE_OK
    red.q.act_min = -40000
    assert lib.te_reduce_s16(red, x, y) == TE_ERR_ARG
    assert lib.te_reduce_wrapper_s16(red, x, y) == TE_ERR_ARG


def test_softmax_int16_runs_in_place(kernels):
    # Each row's exps wait in its own output row: output == input gives the reference.
    ffi, lib = kernels
    rng = np.random.default_rng(90)
    graph = softmax_graph((6, 33), "int16", 2e-4, 0, "int16")
    verify(graph)
    assert get_op("SOFTMAX").inplace_inputs(graph, graph.ops[0]) == [0]
    x = rand(rng, (6, 33), "int16")
    want = run_reference(graph, [x])[0]
    em = get_op("SOFTMAX").emit(graph, graph.ops[0])
    luts = [ffi.from_buffer("int16_t[]", np.ascontiguousarray(c.values)) for c in em.consts]
    buf = x.copy()
    ptr = ffi.from_buffer("int16_t[]", buf)
    assert lib.te_softmax_s16(ffi.new("te_softmax_s16_params_t *", em.params), ptr, *luts,
                              ptr) == TE_OK
    np.testing.assert_array_equal(buf, want)
    # int8 -> int16 cannot share a buffer.
    mixed = softmax_graph((6, 33), "int8", 0.1, 0, "int16")
    assert get_op("SOFTMAX").inplace_inputs(mixed, mixed.ops[0]) == []
