"""int16 activations (TFLite's 16x8 mode): RELU, RELU6, LEAKY_RELU, LOGISTIC and TANH.

1. LOGISTIC and TANH take a new algorithm for int16 (TFLite's sigmoid table, interpolated): the
   numpy reference against a naive scalar transcription of TFLM's Prepare and kernels written
   here, on every int16 input.
2. C == reference == TFLM (verify_graph on one-op graphs built through the TFLite writer) on
   seeded random quantisation parameters, every int16 value among the inputs.
3. Each place where the int16 path differs from the int8 one, pinned by values that the int8
   rule would get wrong.
4. The SEANet LEAKY_RELU model from TFLM's integration tests, bit for bit with TFLM; in place;
   one generated project with every int16 op of these files under ASan/UBSan.
5. Refusals (op and tensor named) and the C entry points' argument checks.
SOFTMAX, pooling, MEAN and SUM: tests/test_ops_16x8_softmax_pool_reduce.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinyengine.errors import TinyEngineError, UnsupportedError
from tinyengine.ir import Graph, Op, QuantParams, Tensor, verify
from tinyengine.ops import get_op
from tinyengine.ops.activations import relu6_limits
from tinyengine.ops.logistic_tanh import (
    SIGMOID_TABLE_Q16,
    input_params,
    logistic_q0,
    tanh_q0,
)
from tinyengine.reference import run_reference

from . import ckernels
from .test_ops_dw_fc_add import n_round

TE_OK, TE_ERR_ARG = 0, 1
ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)
ALL_SHAPE = (1, 64, 64, 16)  # 65536 elements: every int16 value once
Q15 = 1.0 / 32768.0


def qp(scale: float, zp: int = 0) -> QuantParams:
    return QuantParams(np.array([scale], np.float32), np.array([zp], np.int64))


def unary16(kind: str, shape: tuple[int, ...], s_in: float, s_out: float,
            attrs: dict[str, Any] | None = None, dtype: str = "int16") -> Graph:
    t = {"x": Tensor("x", shape, dtype, qp(s_in)), "y": Tensor("y", shape, dtype, qp(s_out))}
    return Graph(t, [Op("act", kind, ["x"], ["y"], dict(attrs or {}))], ["x"], ["y"],
                 name=kind.lower())


def tflm_answer(tflm: Any, graph: Graph, inputs: list[np.ndarray]) -> np.ndarray:
    from tinyengine.frontend.tflite_writer import write_tflite

    return tflm.run_tflm(write_tflite(graph), inputs)[0]


def c_ref_tflm_exact(graph: Graph, given: list[list[np.ndarray]], n_random: int = 1,
                     seed: int = 0) -> None:
    """Compile the graph; its C, its reference and TFLM agree bit for bit on `given` plus
    `n_random` random inputs."""
    from tinyengine.frontend.tflite_writer import write_tflite
    from tinyengine.verify import verify_graph

    verdicts, _ = verify_graph(graph, write_tflite(graph), given=given, n_random=n_random,
                               seed=seed)
    assert all(v.exact and v.max_diff_tflm is not None for v in verdicts), \
        [v.line(0) for v in verdicts]


# ---------------------------------------------------------------------------------------------
# 1. LOGISTIC / TANH int16: naive scalar transcription of TFLM (logistic_common.cc, tanh.cc,
#    reference/integer_ops/logistic.h, tanh.h)
# ---------------------------------------------------------------------------------------------

def n_checked_log2(x: float) -> tuple[int, bool]:
    """CheckedLog2 in float32, here through numpy's float32 log."""
    f = np.float32
    log2 = f(f(np.log(f(x))) * f(f(1.0) / f(np.log(f(2.0)))))
    rounded = n_round(float(log2))
    return rounded, abs(float(log2) - rounded) < 1e-3


def n_prepare(kind: str, s_in: float) -> tuple[int, int]:
    """(input_multiplier, input_left_shift) exactly as Prepare stores them (0: power of two)."""
    log2, pot = n_checked_log2(s_in)
    left_shift = (15 - 3) + log2
    pot = pot and (left_shift == 0 or (kind == "TANH" and left_shift == 1))
    if pot:
        return 0, left_shift
    multiplier, left_shift = float(np.float32(s_in)) * 4096.0 * 3.0, 0
    while multiplier <= 32767.0 / 2.0 and left_shift <= 30:
        left_shift += 1
        multiplier *= 2.0
    return int(multiplier), left_shift


def n_sigmoid16(kind: str, x: int, multiplier: int, left_shift: int) -> int:
    """One element of reference_integer_ops::Logistic / ::Tanh for int16."""
    if multiplier == 0:
        multiplier, left_shift = 3 << left_shift, 0
    rounding = (1 << (left_shift - 1)) if left_shift > 0 else 0
    v = (x * multiplier + rounding) >> left_shift  # Python's >> floors, as the int32 shift
    a = abs(v)
    frac_bits = 9 if kind == "LOGISTIC" else 8
    uh = a >> frac_bits
    if uh >= 255:
        r = (0x7FFF << 10) if kind == "LOGISTIC" else (0xFFFF << 8)
    else:
        ua, ub = int(SIGMOID_TABLE_Q16[uh]), int(SIGMOID_TABLE_Q16[uh + 1])
        r = (ua << frac_bits) + (a & ((1 << frac_bits) - 1)) * (ub - ua)
    if kind == "LOGISTIC":
        r = r + (1 << 9) if v >= 0 else (1 << 25) - r + (1 << 9) - 1
        return r >> 10
    r = r - (1 << 23) + (1 << 7) if v >= 0 else -r + (1 << 23) + (1 << 7) - 1
    return r >> 8


@pytest.mark.parametrize("kind", ["LOGISTIC", "TANH"])
def test_logistic_tanh_int16_reference_matches_naive(kind):
    rng = np.random.default_rng(sum(map(ord, kind)) + 16)
    scales = [2.0 ** -12, 2.0 ** -11, 2.0 ** -10, 2.0 ** -15, 1e-4, 2.6]
    scales += [float(10 ** rng.uniform(-5, 0)) for _ in range(2)]
    for s_in in scales:
        graph = unary16(kind, (65536,), s_in, Q15)
        verify(graph)
        got = run_reference(graph, [ALL_INT16])[0]
        m, ls = n_prepare(kind, s_in)
        want = np.array([n_sigmoid16(kind, int(x), m, ls) for x in ALL_INT16.tolist()])
        np.testing.assert_array_equal(got, want, err_msg=f"{kind} s_in {s_in}")


def test_sigmoid_table_is_the_function():
    # The table is data (TFLite's own values, off the rounded function by up to 1.11 in places);
    # it follows sigmoid(i / 24) in Q0.16 closely, rises, and ends held at 65535. Every entry
    # meets TFLM below (TANH at scale 2^-11 reads indices 0..255).
    i = np.arange(256)
    exact = 65536.0 / (1.0 + np.exp(-i / 24.0))
    assert SIGMOID_TABLE_Q16.dtype == np.uint16 and SIGMOID_TABLE_Q16.shape == (256,)
    assert np.all(np.abs(SIGMOID_TABLE_Q16 - np.minimum(exact, 65535)) < 1.2)
    assert np.all(np.diff(SIGMOID_TABLE_Q16.astype(np.int64)) >= 0)
    assert SIGMOID_TABLE_Q16[0] == 32768 and SIGMOID_TABLE_Q16[-1] == 65535


# ---------------------------------------------------------------------------------------------
# 2. C == reference == TFLM on seeded random one-op graphs, every int16 input
# ---------------------------------------------------------------------------------------------

def random_case16(kind: str, rng: np.random.Generator) -> Graph:
    s_in = float(10 ** rng.uniform(-5, -1))
    attrs: dict[str, Any] = {}
    s_out = float(s_in * 10 ** rng.uniform(-1.5, 1.0))
    if kind == "RELU6":
        s_out = s_in
    elif kind in ("LOGISTIC", "TANH"):
        s_in = float(rng.choice([2.0 ** -12, 2.0 ** -11, 2.0 ** -9, s_in,
                                 10 ** rng.uniform(-1, 0.4)]))
        s_out = Q15
    elif kind == "LEAKY_RELU":
        attrs["alpha"] = float(rng.choice([0.3, 0.01, rng.uniform(0, 1), rng.uniform(1, 3),
                                           rng.uniform(-2, 0)]))
    return unary16(kind, ALL_SHAPE, s_in, s_out, attrs)


@pytest.mark.parametrize("kind", ["RELU", "RELU6", "LEAKY_RELU", "LOGISTIC", "TANH"])
def test_c_reference_tflm_every_int16_input(tflm, kind):
    rng = np.random.default_rng(sum(map(ord, kind)))
    for trial in range(4):
        graph = random_case16(kind, rng)
        verify(graph)
        x = rng.permutation(ALL_INT16).reshape(ALL_SHAPE)
        c_ref_tflm_exact(graph, [[x]], n_random=0, seed=trial)


# ---------------------------------------------------------------------------------------------
# 3. int16 against int8: the differences, each pinned by values the int8 rule gets wrong
# ---------------------------------------------------------------------------------------------

def test_relu_int16_clamps_to_the_int16_range(tflm):
    # s_in = s_out: the rescale is exact. The int8 rule would clamp 200 and 32767 to 127.
    graph = unary16("RELU", (6,), 1e-3, 1e-3)
    x = np.array([-32768, -1, 0, 200, 20000, 32767], np.int16)
    want = np.array([0, 0, 0, 200, 20000, 32767], np.int16)
    np.testing.assert_array_equal(run_reference(graph, [x])[0], want)
    np.testing.assert_array_equal(tflm_answer(tflm, graph, [x]), want)


@pytest.mark.parametrize("kind", ["RELU", "LEAKY_RELU"])
def test_int16_rescale_divides_the_scales_in_double(tflm, kind):
    # The installed TFLM computes s_in / s_out (and s_in * alpha / s_out) in double. The int8
    # path's float32 quotient gives a multiplier 44 units of 2^-31 higher here, which is one
    # too many in some outputs of large int16 inputs.
    from tinyengine import quant

    s_in, s_out, alpha = 0.00107312700044123, 0.0004001786200179526, 0.7
    graph = unary16(kind, (65536,), s_in, s_out, {"alpha": alpha} if kind == "LEAKY_RELU"
                    else {})
    want = tflm_answer(tflm, graph, [ALL_INT16])
    np.testing.assert_array_equal(run_reference(graph, [ALL_INT16])[0], want)
    f = np.float32
    m, shift = quant.quantize_multiplier(float(f(f(s_in) / f(s_out))))
    positive = ALL_INT16 >= 0
    int8_rule = quant.multiply_by_quantized_multiplier(ALL_INT16[positive].astype(np.int64), m,
                                                       shift)
    assert np.count_nonzero(np.clip(int8_rule, 0, 32767) != want[positive]) > 0
    if kind == "LEAKY_RELU":  # and float(float(s_in * alpha) / s_out) below zero
        m, shift = quant.quantize_multiplier(float(f(f(f(s_in) * f(alpha)) / f(s_out))))
        int8_rule = quant.multiply_by_quantized_multiplier(
            ALL_INT16[~positive].astype(np.int64), m, shift)
        assert np.count_nonzero(int8_rule != want[~positive]) > 0


def test_relu6_int16_six_in_int16_units(tflm):
    # six = round(6 / 0.001) = 6000: beyond int8, where the int8 rule would clamp it to 127.
    graph = unary16("RELU6", (5,), 1e-3, 1e-3)
    assert relu6_limits(graph.tensor("x")) == (0, 6000)
    x = np.array([-32768, -5, 5999, 7000, 32767], np.int16)
    want = np.array([0, 0, 5999, 6000, 6000], np.int16)
    np.testing.assert_array_equal(run_reference(graph, [x])[0], want)
    np.testing.assert_array_equal(tflm_answer(tflm, graph, [x]), want)
    # A tiny scale: six saturates at 32767 (FloatToQuantizedType<int16_t>).
    assert relu6_limits(unary16("RELU6", (1,), 1e-5, 1e-5).tensor("x")) == (0, 32767)


def test_leaky_relu_int16_keeps_the_int16_range(tflm):
    # The SEANet parameters: one scale, alpha 0.3 (float32 0.30000001), multiplier 0.6 * 2^-1.
    # The int8 rule would clamp the extremes to -128 and 127. TFLite's double rounding (one
    # rounding doubling high multiply, then a rounding shift, each half away from zero) takes
    # -32768 * 0.3 = -9830.4 to -9831 (-19660.8 -> -19661, then / 2 -> -9830.5 -> -9831) and
    # -0.3 to -1 (-0.6 -> -1, then -0.5 -> -1).
    s = 0.0017488150
    graph = unary16("LEAKY_RELU", (5,), s, s, {"alpha": 0.3})
    x = np.array([-32768, -1000, -1, 1000, 32767], np.int16)
    want = np.array([-9831, -300, -1, 1000, 32767], np.int16)
    np.testing.assert_array_equal(run_reference(graph, [x])[0], want)
    np.testing.assert_array_equal(tflm_answer(tflm, graph, [x]), want)


def test_logistic_tanh_int16_saturation_and_centre(tflm):
    # Scale 1: |v| is far past the table's end for +-32768 / 32767. LOGISTIC's mirrored
    # saturation is 1, not 0; TANH's is -32767. At 0: 0.5 and 0.
    x = np.array([-32768, 0, 32767], np.int16)
    for kind, want in (("LOGISTIC", [1, 16384, 32767]), ("TANH", [-32767, 0, 32767])):
        graph = unary16(kind, (3,), 1.0, Q15)
        np.testing.assert_array_equal(run_reference(graph, [x])[0], want)
        np.testing.assert_array_equal(tflm_answer(tflm, graph, [x]), want)


def int8_rule_sigmoid16(graph: Graph, x: np.ndarray) -> np.ndarray:
    """What the int8 algorithm (gemmlowp logistic / tanh of the input in Q4.27, rounded to the
    output's bits) would give for an int16 tensor with output scale 2^-15, zero point 0."""
    from tinyengine import quant

    op, xt = graph.ops[0], graph.tensor("x")
    multiplier, shift, radius = input_params(op, xt)
    v = x.astype(np.int64)
    inside = (v > -radius) & (v < radius)
    a = quant.multiply_by_quantized_multiplier(np.where(inside, v, 0), multiplier, shift)
    fn = logistic_q0 if op.kind == "LOGISTIC" else tanh_q0
    y = quant.rounding_divide_by_pot(fn(a), 16)
    lo = 0 if op.kind == "LOGISTIC" else -32768
    y = np.where(v <= -radius, lo, np.where(v >= radius, 32767, y))
    return np.clip(y, -32768, 32767)


@pytest.mark.parametrize("kind", ["LOGISTIC", "TANH"])
def test_logistic_tanh_int16_is_not_the_int8_algorithm(tflm, kind):
    # The LUT interpolation and gemmlowp's fixed-point function round differently: the int8
    # rule misses TFLM on many inputs, the reference on none.
    for s_in in (2.0 ** -12, 3e-4):
        graph = unary16(kind, (65536,), s_in, Q15)
        want = tflm_answer(tflm, graph, [ALL_INT16])
        np.testing.assert_array_equal(run_reference(graph, [ALL_INT16])[0], want)
        assert np.count_nonzero(int8_rule_sigmoid16(graph, ALL_INT16) != want) > 100


def test_hard_swish_int16_is_refused_as_tflm_does(tflm):
    # TFLM's HARD_SWISH has no int16 kernel ("Unsupported type INT16" at invoke), so neither do
    # we: the refusal names the op and the int16 tensor.
    graph = unary16("HARD_SWISH", (4,), 0.01, 0.01)
    with pytest.raises(UnsupportedError, match=r"op act \(HARD_SWISH\): tensor x is int16"):
        verify(graph)
    with pytest.raises(TinyEngineError, match="TFLM rejected"):
        tflm_answer(tflm, graph, [np.arange(4, dtype=np.int16)])


# ---------------------------------------------------------------------------------------------
# 4. The SEANet model, in place, and a sanitized project
# ---------------------------------------------------------------------------------------------

def test_seanet_leaky_relu_model_matches_tflm(tflm, shared_models):
    from tinyengine.verify import verify_model

    model = shared_models / "tflm_seanet_leaky_relu0.tflite"
    verdicts, report = verify_model(model, n_random=20, seed=0)
    assert [v.exact for v in verdicts] == [True] and verdicts[0].max_diff_tflm == 0
    assert verdicts[0].n_inputs == 20
    head = tflm.tflm_arena(model)["head"]
    assert head == 10240  # the MANIFEST's figure
    # Measured: 5120 B, the output taking the input's buffer (2 x 160 x 8 int16); TFLM's head
    # holds both tensors.
    assert report["arena_bytes"] <= head


def activation_chain(rng: np.random.Generator) -> Graph:
    """x -> RELU -> LEAKY_RELU -> RELU6 -> LOGISTIC -> TANH, all int16."""
    shape = (1, 5, 6, 8)
    t = {"x": Tensor("x", shape, "int16", qp(1 / 2048))}
    ops, prev, scale = [], "x", 1 / 2048
    for i, kind in enumerate(["RELU", "LEAKY_RELU", "RELU6", "LOGISTIC", "TANH"]):
        s = {"RELU6": scale, "LOGISTIC": Q15, "TANH": Q15}.get(
            kind, float(scale * rng.uniform(0.4, 1.5)))
        name = f"t{i}"
        t[name] = Tensor(name, shape, "int16", qp(s))
        attrs = {"alpha": -0.3} if kind == "LEAKY_RELU" else {}
        ops.append(Op(kind.lower(), kind, [prev], [name], attrs))
        prev, scale = name, s
    return Graph(t, ops, ["x"], [prev], name="act16")


def test_activation_chain_in_place(tmp_path: Path):
    from tinyengine.codegen import compile_graph
    from tinyengine.memory.inplace import alias_groups
    from tinyengine.runtime import HostModel

    graph = activation_chain(np.random.default_rng(31))
    verify(graph)
    for op in graph.ops:
        op.attrs["inplace"] = 0  # each output overwrites its input, which dies there
    groups = alias_groups(graph)
    assert len({groups[n] for n in ["x"] + [op.outputs[0] for op in graph.ops]}) == 1
    compile_graph(graph, tmp_path / "p", prefix="act16", patch="off", inplace=False)
    host = HostModel(tmp_path / "p")
    rng = np.random.default_rng(32)
    for _ in range(3):
        x = rng.integers(-32768, 32768, (1, 5, 6, 8)).astype(np.int16)
        np.testing.assert_array_equal(host.invoke([x])[0], run_reference(graph, [x])[0])


# ---------------------------------------------------------------------------------------------
# 5. Refusals and the C entry points' argument checks
# ---------------------------------------------------------------------------------------------

def refused(graph: Graph, *needles: str) -> None:
    with pytest.raises(UnsupportedError) as e:
        verify(graph)
    for needle in needles:
        assert needle in str(e.value), (needle, str(e.value))


def test_int16_refusals_name_op_and_tensor():
    refused(unary16("LOGISTIC", (4,), 1e-3, 1 / 256), "op act (LOGISTIC)", "output y",
            "2^-15")
    refused(unary16("TANH", (4,), 3.0, Q15), "op act (TANH)", "input x", "scale 3")
    g = unary16("RELU", (4,), 1e-3, 1e-3)
    g.tensors["y"].quant = qp(1e-3, 5)
    refused(g, "op act (RELU)", "tensor y", "zero point 5")
    g = unary16("LEAKY_RELU", (4,), 1e-3, 1e-3, {"alpha": 0.1})
    g.tensors["x"] = Tensor("x", (4,), "int8", qp(1e-3))
    refused(g, "op act (LEAKY_RELU)", "tensor y is int16 where x is int8")


CDEF = """
typedef enum { TE_OK = 0, TE_ERR_ARG = 1, TE_ERR_SCRATCH = 2 } te_status_t;
typedef struct { int32_t size; int32_t input_zero_point; int32_t output_zero_point;
                 int32_t multiplier; int32_t shift; int32_t act_min; int32_t act_max; }
    te_relu_params_t;
typedef struct { int32_t size; int32_t lower; int32_t upper; } te_relu6_params_t;
typedef struct { int32_t size; int32_t input_zero_point; int32_t output_zero_point;
                 int32_t multiplier_identity; int32_t shift_identity;
                 int32_t multiplier_alpha; int32_t shift_alpha; } te_leaky_relu_params_t;
typedef struct { int32_t size; int32_t input_multiplier; int32_t input_shift; }
    te_sigmoid16_params_t;
te_status_t te_relu_s16(const te_relu_params_t *p, const int16_t *input, int16_t *output);
te_status_t te_relu6_s16(const te_relu6_params_t *p, const int16_t *input, int16_t *output);
te_status_t te_leaky_relu_s16(const te_leaky_relu_params_t *p, const int16_t *input,
                              int16_t *output);
te_status_t te_logistic_s16(const te_sigmoid16_params_t *p, const int16_t *input,
                            const uint16_t *table, int16_t *output);
te_status_t te_tanh_s16(const te_sigmoid16_params_t *p, const int16_t *input,
                        const uint16_t *table, int16_t *output);
"""


@pytest.fixture(scope="module")
def kernels() -> tuple[Any, Any]:
    return ckernels.build(["te_activations.h", "te_leaky_relu.h", "te_logistic_tanh.h"],
                          ["te_activations.c", "te_leaky_relu.c", "te_logistic_tanh.c"], CDEF)


def test_s16_kernels_refuse_arguments_outside_their_domain(kernels):
    ffi, lib = kernels
    x = np.zeros(4, np.int16)
    y = np.zeros(4, np.int16)
    px, py = ffi.from_buffer("int16_t[]", x), ffi.from_buffer("int16_t[]", y)
    table = ffi.from_buffer("uint16_t[]", SIGMOID_TABLE_Q16)

    def relu(**over: int) -> int:
        p = dict(size=4, input_zero_point=0, output_zero_point=0, multiplier=1 << 30, shift=1,
                 act_min=0, act_max=32767) | over
        return lib.te_relu_s16(ffi.new("te_relu_params_t *", p), px, py)

    assert relu() == TE_OK
    assert relu(act_max=32768) == TE_ERR_ARG
    assert relu(act_min=-32769) == TE_ERR_ARG
    assert relu(size=0) == TE_ERR_ARG
    assert lib.te_relu6_s16(ffi.new("te_relu6_params_t *", [4, 0, 32768]), px, py) == TE_ERR_ARG
    assert lib.te_relu6_s16(ffi.new("te_relu6_params_t *", [4, 0, 32767]), px, py) == TE_OK
    leaky = ffi.new("te_leaky_relu_params_t *", [4, 0, 40000, 1 << 30, 1, 1 << 29, 1])
    assert lib.te_leaky_relu_s16(leaky, px, py) == TE_ERR_ARG  # zero point beyond int16
    for fn in (lib.te_logistic_s16, lib.te_tanh_s16):
        assert fn(ffi.new("te_sigmoid16_params_t *", [4, 3, 0]), px, table, py) == TE_OK
        assert fn(ffi.new("te_sigmoid16_params_t *", [4, 0, 0]), px, table, py) == TE_ERR_ARG
        assert fn(ffi.new("te_sigmoid16_params_t *", [4, 32768, 1]), px, table,
                  py) == TE_ERR_ARG
        assert fn(ffi.new("te_sigmoid16_params_t *", [4, 3, 32]), px, table, py) == TE_ERR_ARG
        assert fn(ffi.new("te_sigmoid16_params_t *", [4, 3, 0]), px, ffi.NULL,
                  py) == TE_ERR_ARG


def test_s16_kernels_run_in_place(kernels):
    # Every element is read before it is written: output == input gives the reference.
    ffi, lib = kernels
    rng = np.random.default_rng(41)
    for kind in ("LOGISTIC", "TANH", "RELU", "LEAKY_RELU"):
        graph = random_case16(kind, rng)
        verify(graph)
        em = get_op(kind).emit(graph, graph.ops[0])
        x = rng.permutation(ALL_INT16).reshape(ALL_SHAPE)
        want = run_reference(graph, [x])[0]
        buf = x.copy()
        ptr = ffi.from_buffer("int16_t[]", buf)
        params = ffi.new(f"{em.params_type} *", em.params)
        consts = [ffi.from_buffer("uint16_t[]", np.ascontiguousarray(c.values))
                  for c in em.consts]
        assert getattr(lib, em.kernel)(params, ptr, *consts, ptr) == TE_OK
        np.testing.assert_array_equal(buf, want, err_msg=kind)
