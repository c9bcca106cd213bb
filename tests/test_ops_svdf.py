"""SVDF (int8 activations, int16 or int8 state carried across invocations), checked four ways on
seeded random one-op graphs, each over a stream of invocations and again after a reset:

1. the numpy reference against a naive scalar transcription of TFLM's EvalIntegerSvdfReference
   written here (the flat state shift included);
2. the reference against TFLM (the tflite-micro interpreter, one instance per stream), outputs
   and the state tensor itself after every invoke (read back with kPreserveAllTensors);
3. the C kernels, called as emit() says, against the reference; a compiled project (HostModel,
   <prefix>_reset) and its demo under ASan/UBSan against the reference session;
4. TFLM's quirks pinned with cases that fail under the obvious alternative: the fused activation
   is not applied, the multipliers are computed in double (not float32), int32 sums wrap, and a
   state's zero point wraps the stored value.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinyengine import quant
from tinyengine.errors import UnsupportedError
from tinyengine.frontend.tflite_reader import parse_tflite
from tinyengine.frontend.tflite_writer import write_tflite
from tinyengine.ir import DTYPES, Graph, Op, QuantParams, Tensor, verify
from tinyengine.ops import get_op

from . import ckernels
from .sanitized import check_sanitized_demo
from .test_ops_dw_fc_add import n_mbqm, n_quantize_multiplier, n_wrap32

TE_OK, TE_ERR_ARG = 0, 1
STEPS = 10
QMAX = {"int16": 32767, "int8": 127}


def qp(scale: float, zp: int = 0) -> QuantParams:
    return QuantParams(np.array([scale], np.float32), np.array([zp], np.int64))


# ---------------------------------------------------------------------------------------------
# Naive transcription of EvalIntegerSvdfReference<T> and PrepareSvdf (svdf_common.cc)
# ---------------------------------------------------------------------------------------------

@dataclass
class Naive:
    """What PrepareSvdf caches, computed here independently of tinyengine/ops/svdf.py."""

    rank: int
    zp_in: int
    zp_state: int
    zp_out: int
    m1: tuple[int, int]
    m2: tuple[int, int]
    state_range: tuple[int, int]


def naive_params(g: Graph, float32: bool = False) -> Naive:
    op = g.ops[0]
    x, wf, wt, _, s = (g.tensor(n) for n in op.inputs)
    out = g.tensor(op.outputs[0])
    if float32:  # what svdf_common.cc's source reads: float products and quotients
        f = np.float32
        r1 = float(f(f(x.scale) * f(wf.scale)) / f(s.scale))
        r2 = float(f(f(s.scale) * f(wt.scale)) / f(out.scale))
    else:  # what the installed TFLM computes: each scale converted to double first
        r1 = x.scale * wf.scale / s.scale
        r2 = s.scale * wt.scale / out.scale
    lo, hi = (-32768, 32767) if s.dtype == "int16" else (-128, 127)
    return Naive(int(op.attrs["rank"]), x.zero_point, s.zero_point, out.zero_point,
                 n_quantize_multiplier(r1), n_quantize_multiplier(r2), (lo, hi))


def data(g: Graph, name: str) -> np.ndarray:
    values = g.tensor(name).data
    assert values is not None, name
    return values


def consts(g: Graph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """weights_feature, weights_time and bias of a one-op SVDF graph."""
    return data(g, "wf"), data(g, "wt"), data(g, "b")


def n_cast(v: int, lo: int, hi: int) -> int:
    """C's conversion of an int to a two's-complement type of range [lo, hi]."""
    span = hi - lo + 1
    return (v - lo) % span + lo


def n_svdf(p: Naive, x: np.ndarray, wf: np.ndarray, wt: np.ndarray, bias: np.ndarray,
           state: list[int]) -> tuple[list[int], list[int]]:
    """One invocation; `state` (flat) is updated in place. Returns (outputs, accumulators)."""
    n_batch, n_input = x.shape
    n_filter, n_memory = wt.shape
    n_unit = n_filter // p.rank
    for i in range(len(state) - 1):  # left shift of the whole buffer
        state[i] = state[i + 1]
    for b in range(n_batch):
        for r in range(n_filter):
            dot = 0
            for c in range(n_input):
                dot += int(wf[r, c]) * (int(x[b, c]) - p.zp_in)
            dot = n_mbqm(n_wrap32(dot), *p.m1)
            dot = min(max(dot, p.state_range[0]), p.state_range[1])
            state[b * n_filter * n_memory + r * n_memory + n_memory - 1] = n_cast(
                p.zp_state + dot, *p.state_range)
    outs, accs = [], []
    for b in range(n_batch):
        scratch = []
        for i in range(n_filter):
            acc = 0
            for j in range(n_memory):
                acc += int(wt[i, j]) * (state[b * n_filter * n_memory + i * n_memory + j]
                                        - p.zp_state)
            scratch.append(n_wrap32(acc))
        for i in range(n_unit):
            acc = int(bias[i]) + sum(scratch[i * p.rank:(i + 1) * p.rank])
            accs.append(n_wrap32(acc))
            y = n_mbqm(n_wrap32(acc), *p.m2) + p.zp_out
            outs.append(min(max(y, -128), 127))
    return outs, accs


# ---------------------------------------------------------------------------------------------
# Seeded random one-op graphs
# ---------------------------------------------------------------------------------------------

@dataclass
class Config:
    batches: int = 1
    n_in: int = 8
    units: int = 4
    rank: int = 1
    memory: int = 5
    dtype: str = "int16"
    activation: str = "RELU"
    state_zp: int = 0


def svdf_graph(rng: np.random.Generator, c: Config, so: float = 1.0) -> Graph:
    """A one-op SVDF graph whose state scale keeps the feature values mostly inside the state's
    range; the output scale `so` is set by `svdf_case` from the accumulators' spread."""
    filters, qmax = c.units * c.rank, QMAX[c.dtype]
    sx, swf, swt = (float(rng.uniform(a, b)) for a, b in ((0.01, 0.1), (0.002, 0.02),
                                                            (0.001, 0.01)))
    # A uniform int8 value has a spread of about 74: the feature dot's spread is 74^2 sqrt(n).
    ss = sx * swf * 74.0 * 74.0 * math.sqrt(c.n_in) / (qmax * rng.uniform(0.15, 0.6))
    wt_max = int(qmax * rng.uniform(0.2, 1.0))
    t = {
        "x": Tensor("x", (c.batches, c.n_in), "int8", qp(sx, int(rng.integers(-128, 128)))),
        "wf": Tensor("wf", (filters, c.n_in), "int8", qp(swf),
                     rng.integers(-127, 128, (filters, c.n_in)).astype(np.int8)),
        "wt": Tensor("wt", (filters, c.memory), c.dtype, qp(swt),
                     rng.integers(-wt_max, wt_max + 1, (filters, c.memory)).astype(c.dtype)),
        "b": Tensor("b", (c.units,), "int32", qp(float(np.float32(ss) * np.float32(swt))),
                    rng.integers(-(1 << 16), 1 << 16, c.units).astype(np.int32)),
        "s": Tensor("s", (c.batches, filters * c.memory), c.dtype, qp(ss, c.state_zp),
                    variable=True),
        "y": Tensor("y", (c.batches, c.units), "int8", qp(so, int(rng.integers(-128, 128)))),
    }
    op = Op("svdf", "SVDF", ["x", "wf", "wt", "b", "s"], ["y"],
            {"rank": c.rank, "activation": c.activation})
    return Graph(t, [op], ["x"], ["y"])


def svdf_case(rng: np.random.Generator, c: Config) -> Graph:
    """svdf_graph with an output scale near the spread of the accumulators over a stream (they
    do not depend on the output scale), so outputs neither vanish nor all clip."""
    g = svdf_graph(rng, c)
    p = naive_params(g)
    state = [g.tensor("s").reset_value] * g.tensor("s").size
    accs: list[int] = []
    calib = np.random.default_rng(int(rng.integers(1 << 30)))
    for _ in range(STEPS):
        x = calib.integers(-128, 128, g.tensor("x").shape).astype(np.int8)
        accs += n_svdf(p, x, *consts(g), state)[1]
    spread = max(float(np.std(accs)), 1.0)
    s, wt = g.tensor("s"), g.tensor("wt")
    g.tensor("y").quant = qp(float(s.scale * wt.scale * spread / 50.0 * rng.uniform(0.5, 2.0)),
                             g.tensor("y").zero_point)
    verify(g)
    return g


def random_config(rng: np.random.Generator) -> Config:
    dtype = str(rng.choice(["int16", "int8"]))
    return Config(batches=int(rng.integers(1, 3)), n_in=int(rng.integers(1, 40)),
                  units=int(rng.integers(1, 9)), rank=int(rng.integers(1, 3)),
                  memory=int(rng.integers(1, 12)), dtype=dtype,
                  activation=str(rng.choice(["NONE", "RELU", "RELU6"])),
                  state_zp=0 if dtype == "int16" else int(rng.integers(-20, 21)))


def inputs_stream(rng: np.random.Generator, g: Graph, n: int = STEPS) -> list[np.ndarray]:
    return [rng.integers(-128, 128, g.tensor("x").shape).astype(np.int8) for _ in range(n)]


class RefStream:
    """The op's reference hook with the state kept between calls, as ReferenceSession keeps it."""

    def __init__(self, g: Graph):
        self.g, self.op, self.opdef = g, g.ops[0], get_op("SVDF")
        self.reset()

    def reset(self) -> None:
        s = self.g.tensor("s")
        self.state = np.full(s.shape, s.reset_value, DTYPES[s.dtype])

    def invoke(self, x: np.ndarray) -> np.ndarray:
        (y,) = self.opdef.reference(self.g, self.op, [x, *consts(self.g), self.state])
        assert y.dtype == np.int8 and y.shape == self.g.tensor("y").shape
        return y


# ---------------------------------------------------------------------------------------------
# 1. reference == naive transcription
# ---------------------------------------------------------------------------------------------

def test_reference_matches_naive_transcription() -> None:
    rng = np.random.default_rng(1301)
    for _ in range(12):
        g = svdf_case(rng, random_config(rng))
        ref, p = RefStream(g), naive_params(g)
        state = [g.tensor("s").reset_value] * g.tensor("s").size
        for x in inputs_stream(rng, g):
            y = ref.invoke(x)
            want, _ = n_svdf(p, x, *consts(g), state)
            assert y.ravel().tolist() == want
            assert ref.state.ravel().tolist() == state


# ---------------------------------------------------------------------------------------------
# 2. reference == TFLM, outputs and state, over a stream and after reset
# ---------------------------------------------------------------------------------------------

class TflmStream:
    """One TFLM interpreter for a stream; keeps every tensor so the state can be read back."""

    def __init__(self, g: Graph):
        from tflite_micro import runtime

        self.itp = runtime.Interpreter.from_bytes(
            write_tflite(g), arena_size=1 << 20,
            intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
        self.state_index = list(g.tensors).index("s")  # the writer keeps the graph's order

    def invoke(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.itp.set_input(x, 0)
        self.itp.invoke()
        state = self.itp.GetTensor(self.state_index, 0)["tensor_data"]
        return np.array(self.itp.get_output(0), copy=True), np.array(state, copy=True)

    def reset(self) -> None:
        self.itp.reset()


def stream_against_tflm(g: Graph, rng: np.random.Generator) -> list[np.ndarray]:
    """Two streams of STEPS invokes with a reset between; every output and state compared."""
    ref, oracle = RefStream(g), TflmStream(g)
    outs = []
    for _ in range(2):
        for k, x in enumerate(inputs_stream(rng, g)):
            want_y, want_s = oracle.invoke(x)
            y = ref.invoke(x)
            np.testing.assert_array_equal(y, want_y.reshape(y.shape), err_msg=f"output, step {k}")
            np.testing.assert_array_equal(ref.state, want_s.reshape(ref.state.shape),
                                          err_msg=f"state, step {k}")
            outs.append(y)
        ref.reset()
        oracle.reset()
    return outs


CONFIGS = [
    Config(),
    Config(units=1, memory=1, n_in=1),
    Config(units=8, rank=2, memory=10, n_in=33),
    Config(batches=2, units=3, rank=2, memory=4),
    Config(units=64, memory=8, n_in=96, activation="NONE"),  # keyword_scrambled's first layer
    Config(batches=2, units=5, memory=3, state_zp=-300, activation="RELU6"),
    Config(dtype="int8", state_zp=-128),
    Config(dtype="int8", batches=2, units=6, rank=2, memory=7, state_zp=5),
    Config(dtype="int8", units=2, memory=12, n_in=20, activation="NONE"),
]


@pytest.mark.parametrize("index", range(len(CONFIGS)))
def test_reference_matches_tflm_stream_and_reset(tflm: Any, index: int) -> None:
    rng = np.random.default_rng(1310 + index)
    g = svdf_case(rng, CONFIGS[index])
    outs = np.concatenate([y.ravel() for y in stream_against_tflm(g, rng)])
    # The cases must exercise the arithmetic, not only the clamps.
    assert np.mean((outs > -128) & (outs < 127)) > 0.3


def test_random_configs_match_tflm(tflm: Any) -> None:
    rng = np.random.default_rng(1320)
    for _ in range(8):
        stream_against_tflm(svdf_case(rng, random_config(rng)), rng)


def test_fused_activation_is_not_applied(tflm: Any) -> None:
    """TFLM's integer SVDF clamps to [-128, 127] whatever the options say: outputs fall outside
    the fused activation's limits (a RELU clamp would lift every output to the zero point)."""
    rng = np.random.default_rng(1330)
    for act in ("RELU", "RELU6", "RELU_N1_TO_1"):
        g = svdf_case(rng, Config(units=8, activation=act))
        y = g.tensor("y")
        y.quant = qp(y.scale, 0)
        lo, hi = quant.activation_range(act, y.scale, 0)
        outs = np.concatenate([o.ravel() for o in stream_against_tflm(g, rng)])
        assert ((outs < lo) | (outs > hi)).any(), act


def _multiplier_case(rng: np.random.Generator) -> tuple[Graph, Naive, Naive]:
    """A case whose feature and output multipliers both differ between double and float32
    arithmetic on the scales (most do, by tens of units of the Q31 multiplier)."""
    while True:
        g = svdf_case(rng, Config(units=16, n_in=32, memory=2))
        double, single = naive_params(g), naive_params(g, float32=True)
        if double.m1 != single.m1 and abs(double.m2[0] - single.m2[0]) >= 30:
            return g, double, single


def test_multipliers_are_double(tflm: Any) -> None:
    """svdf_common.cc's source multiplies and divides the float scales in float32, but the
    installed TFLM computes in double (as for FULLY_CONNECTED: fully_connected.py). Inputs whose
    feature value rounds differently under the float32 multiplier, and a bias that puts an
    accumulator where the output rounds differently: TFLM's state and output are the double
    rule's."""
    rng = np.random.default_rng(1340)
    g, double, single = _multiplier_case(rng)
    x, s = g.tensor("x"), g.tensor("s")
    wfd, wt, b = consts(g)
    rows = rng.integers(-128, 128, (20000, x.shape[1]))
    dots = quant._wrap32((rows - x.zero_point) @ wfd.astype(np.int64).T)
    lo, hi = double.state_range
    f1 = np.clip(quant.multiply_by_quantized_multiplier(dots, *double.m1), lo, hi)
    f2 = np.clip(quant.multiply_by_quantized_multiplier(dots, *single.m1), lo, hi)
    picked = np.flatnonzero((f1 != f2).any(axis=1))
    assert picked.size >= 3
    stream = [rows[i].astype(np.int8).reshape(x.shape) for i in picked[:3]]
    # Unit 0's time sum at the first step, then the bias that moves it onto a rounding split.
    b[0] = 0
    t0 = n_svdf(double, stream[0], wfd, wt, b, [0] * s.size)[1][0]
    real2 = double.m2[0] * 2.0 ** (double.m2[1] - 31)
    cands = np.unique(np.concatenate([np.arange(-2000, 2000) + int((n + 0.5) / real2)
                                      for n in range(-60, 60)]))
    o1 = quant.multiply_by_quantized_multiplier(cands, *double.m2)
    o2 = quant.multiply_by_quantized_multiplier(cands, *single.m2)
    split = np.flatnonzero((o1 != o2) & (np.abs(o1 + double.zp_out) < 100))
    assert split.size
    b[0] = int(cands[split[0]]) - t0
    ref, oracle = RefStream(g), TflmStream(g)
    naive_single, naive_double = [0] * s.size, [0] * s.size
    for k, xv in enumerate(stream):
        want_y, want_s = oracle.invoke(xv)
        y = ref.invoke(xv)
        np.testing.assert_array_equal(ref.state, want_s.reshape(ref.state.shape))
        np.testing.assert_array_equal(y, want_y.reshape(y.shape))
        y1, _ = n_svdf(double, xv, wfd, wt, b, naive_double)
        y2, _ = n_svdf(single, xv, wfd, wt, b, naive_single)
        assert naive_single != naive_double  # the float32 rule keeps another state
        if k == 0:
            assert y1[0] != y2[0]  # and gives another output


def saturated_case(sign: int) -> Graph:
    """Feature values that clamp the int16 state at sign * 32767 (or -32768) on every step, time
    weights of full scale and the same sign: each time sum passes 2^31 by the 3rd step. 2^31 in
    the accumulator maps to 100 output steps."""
    g = svdf_graph(np.random.default_rng(1350), Config(units=2, n_in=4, memory=8,
                                                       activation="NONE"))
    x, wf, wt, b, s = (g.tensor(n) for n in ("x", "wf", "wt", "b", "s"))
    x.quant = qp(x.scale, -128)
    wf.data = np.full((2, 4), 127 if sign > 0 else -128, np.int8)
    wt.data = np.full((2, 8), 32767 if sign > 0 else -32768, np.int16)
    b.data = np.zeros(2, np.int32)
    s.quant = qp(x.scale * wf.scale / 1000.0)
    b.quant = qp(float(np.float32(s.scale) * np.float32(wt.scale)))
    g.tensor("y").quant = qp(float(s.scale * wt.scale * 2.0 ** 31 / 100.0), 0)
    verify(g)
    return g


def test_sums_wrap_to_int32_like_tflm(tflm: Any) -> None:
    """TFLM's int32 time sums wrap (C's signed overflow, wrapping on every compiler), and so do
    ours."""
    g = saturated_case(+1)
    ref, oracle = RefStream(g), TflmStream(g)
    for _ in range(8):
        xv = np.full((1, 4), 127, np.int8)
        want_y, _ = oracle.invoke(xv)
        y = ref.invoke(xv)
        np.testing.assert_array_equal(y, want_y.reshape(y.shape))
    assert (ref.state == 32767).all()
    # An int64 sum (8 * 32767^2 > 2^32) would map to 400 and clip to 127; the wrapped one is
    # 8 * 32767^2 - 2^33, near 0.
    assert (y == 0).all()


def test_int8_state_zero_point_wraps_the_stored_value(tflm: Any) -> None:
    """The feature value is clamped to [-128, 127] before the state's zero point is added, so a
    large zero point pushes it out of int8, and TFLM's store wraps it."""
    rng = np.random.default_rng(1360)
    g = svdf_case(rng, Config(dtype="int8", units=6, memory=3, state_zp=100))
    stream_against_tflm(g, rng)
    p, state = naive_params(g), [100] * g.tensor("s").size
    raw = []
    for x in inputs_stream(np.random.default_rng(1361), g):
        n_svdf(p, x, *consts(g), state)
        raw += state
    assert min(raw) < -28  # only a wrapped store (127 + 100 -> -29) lands below -28


# ---------------------------------------------------------------------------------------------
# 3. C kernels and compiled projects == reference
# ---------------------------------------------------------------------------------------------

CDEF = """
typedef enum { TE_OK = 0, TE_ERR_ARG = 1, TE_ERR_SCRATCH = 2 } te_status_t;
typedef struct {
    int32_t batches; int32_t input_size; int32_t filters; int32_t rank; int32_t memory;
    int32_t input_offset; int32_t state_zero_point; int32_t output_offset;
    int32_t feature_multiplier; int32_t feature_shift;
    int32_t output_multiplier; int32_t output_shift;
} te_svdf_params_t;
te_status_t te_svdf_s8(const te_svdf_params_t *p, const int8_t *input,
                       const int8_t *weights_feature, const int16_t *weights_time,
                       const int32_t *bias, int16_t *state, int8_t *output);
te_status_t te_svdf_s8_state_s8(const te_svdf_params_t *p, const int8_t *input,
                                const int8_t *weights_feature, const int8_t *weights_time,
                                const int32_t *bias, int8_t *state, int8_t *output);
"""


@pytest.fixture(scope="module")
def kernels() -> tuple[Any, Any]:
    return ckernels.build(["te_svdf.h"], ["te_svdf.c"], CDEF)


class CStream:
    """The C kernel emit() chooses, called with emit()'s parameters and a state it keeps."""

    def __init__(self, kernels: tuple[Any, Any], g: Graph):
        self.ffi, self.lib = kernels
        self.g = g
        self.em = get_op("SVDF").emit(g, g.ops[0])
        assert self.em.scratch_bytes == 0 and get_op("SVDF").scratch_bytes(g, g.ops[0]) == 0
        self.params = self.ffi.new("te_svdf_params_t *", self.em.params)
        self.consts = {c.name: np.ascontiguousarray(c.values) for c in self.em.consts}
        self.reset()

    def reset(self) -> None:
        s = self.g.tensor("s")
        self.state = np.full(s.shape, s.reset_value, DTYPES[s.dtype])

    def ptr(self, a: np.ndarray) -> Any:
        return self.ffi.from_buffer(f"{a.dtype}_t[]", a)

    def invoke(self, x: np.ndarray, params: Any = None) -> tuple[int, np.ndarray]:
        y = np.full(self.g.tensor("y").shape, 55, np.int8)
        c = self.consts
        status = getattr(self.lib, self.em.kernel)(
            params if params is not None else self.params, self.ptr(np.ascontiguousarray(x)),
            self.ptr(c["weights_feature"]), self.ptr(c["weights_time"]), self.ptr(c["bias"]),
            self.ptr(self.state), self.ptr(y))
        return int(status), y


def test_c_kernels_match_reference(kernels: tuple[Any, Any]) -> None:
    rng = np.random.default_rng(1370)
    chosen = set()
    for k in range(16):
        c = CONFIGS[k] if k < len(CONFIGS) else random_config(rng)
        g = svdf_case(rng, c)
        ref, cs = RefStream(g), CStream(kernels, g)
        assert cs.em.kernel == {"int16": "te_svdf_s8", "int8": "te_svdf_s8_state_s8"}[c.dtype]
        chosen.add(cs.em.kernel)
        for _ in range(2):
            for x in inputs_stream(rng, g):
                status, y = cs.invoke(x)
                assert status == TE_OK
                np.testing.assert_array_equal(y, ref.invoke(x))
                np.testing.assert_array_equal(cs.state, ref.state)
            cs.reset()
            ref.reset()
    assert chosen == {"te_svdf_s8", "te_svdf_s8_state_s8"}


@pytest.mark.parametrize("sign", [1, -1])
def test_c_kernel_sums_wrap(kernels: tuple[Any, Any], sign: int) -> None:
    """The C kernel's uint32 sums give the reference's wrapped int32 values."""
    g = saturated_case(sign)
    ref, cs = RefStream(g), CStream(kernels, g)
    for _ in range(STEPS):
        xv = np.full((1, 4), 127, np.int8)
        status, y = cs.invoke(xv)
        assert status == TE_OK
        np.testing.assert_array_equal(y, ref.invoke(xv))
        np.testing.assert_array_equal(cs.state, ref.state)
    assert (np.abs(ref.state.astype(np.int64)) >= 32767).all()


def test_c_kernel_refuses_bad_parameters(kernels: tuple[Any, Any]) -> None:
    g = svdf_case(np.random.default_rng(1372), Config(rank=2, units=2))
    cs = CStream(kernels, g)
    x = np.zeros(g.tensor("x").shape, np.int8)
    assert cs.invoke(x)[0] == TE_OK
    for field, value in (("rank", 3), ("rank", 0), ("memory", 0), ("batches", 0),
                         ("input_size", 0), ("input_offset", 129), ("output_offset", 128),
                         ("state_zero_point", 40000), ("feature_shift", 32),
                         ("output_shift", -32), ("output_multiplier", -1)):
        bad = cs.ffi.new("te_svdf_params_t *", {**cs.em.params, field: value})
        assert cs.invoke(x, bad)[0] == TE_ERR_ARG, field
    assert cs.lib.te_svdf_s8(cs.params, cs.ffi.NULL, cs.ffi.NULL, cs.ffi.NULL, cs.ffi.NULL,
                             cs.ffi.NULL, cs.ffi.NULL) == TE_ERR_ARG


def test_compiled_project_streams_and_resets(tmp_path: Path) -> None:
    from tinyengine.codegen import compile_graph
    from tinyengine.reference import ReferenceSession
    from tinyengine.runtime import HostModel

    rng = np.random.default_rng(1380)
    for k, c in enumerate((Config(batches=2, units=3, rank=2, memory=4),
                           Config(dtype="int8", units=5, memory=6, state_zp=-7))):
        g = svdf_case(rng, c)
        report = compile_graph(g, tmp_path / f"p{k}", prefix="svdf")
        assert report["persistent_bytes"] >= g.tensor("s").nbytes
        assert all(o["scratch_bytes"] == 0 for o in report["ops"])
        host, ref = HostModel(tmp_path / f"p{k}"), ReferenceSession(g)
        stream = inputs_stream(rng, g)
        first = [ref.invoke([x])[0] for x in stream]
        for x, want in zip(stream, first):
            np.testing.assert_array_equal(host.invoke([x])[0], want)
        host.reset()
        ref.reset()
        for x, want in zip(stream, first):  # the same stream again gives the same outputs
            np.testing.assert_array_equal(ref.invoke([x])[0], want)
            np.testing.assert_array_equal(host.invoke([x])[0], want)


def test_sanitized_demo_stream(tmp_path: Path) -> None:
    from tinyengine.codegen import compile_graph

    rng = np.random.default_rng(1390)
    for k, c in enumerate((Config(batches=2, units=4, rank=2, memory=5, n_in=12),
                           Config(dtype="int8", units=3, memory=4, state_zp=9))):
        g = svdf_case(rng, c)
        compile_graph(g, tmp_path / f"p{k}", prefix="svdf")
        check_sanitized_demo(tmp_path / f"p{k}", "svdf", g, [[x] for x in inputs_stream(rng, g)])


# ---------------------------------------------------------------------------------------------
# 4. Frontends and refusals
# ---------------------------------------------------------------------------------------------

def test_tflite_round_trip() -> None:
    g = svdf_case(np.random.default_rng(1400), Config(rank=2, units=3, activation="RELU6"))
    back = parse_tflite(write_tflite(g))
    (op,) = back.ops
    assert op.kind == "SVDF" and op.attrs == {"rank": 2, "activation": "RELU6"}
    state = back.tensor(op.inputs[4])
    assert state.variable and state.dtype == "int16" and state.shape == g.tensor("s").shape
    assert get_op("SVDF").state_inputs(back, op) == [4]


def test_hybrid_svdf_is_refused() -> None:
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    g = svdf_case(np.random.default_rng(1401), Config())
    model = fb.ModelT.InitFromPackedBuf(write_tflite(g), 0)
    model.subgraphs[0].operators[0].builtinOptions.asymmetricQuantizeInputs = True
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    with pytest.raises(UnsupportedError, match="SVDF.*asymmetric_quantize_inputs"):
        parse_tflite(bytes(builder.Output()))


def _mutations() -> list[tuple[str, Any, str]]:
    """(what, mutate(graph), a word the message must hold besides the op and the tensor)."""
    def drop_bias(g: Graph) -> str:
        g.ops[0].inputs[3] = ""
        return "bias"

    def not_variable(g: Graph) -> str:  # an int8 state the caller would feed as an input
        g.tensor("s").variable = False  # (an int16 one meets the IR's rule "int8 activations")
        g.tensor("s").dtype = "int8"
        g.tensor("wt").dtype = "int8"
        g.tensor("wt").data = data(g, "wt").astype(np.int8)
        g.inputs.append("s")
        return "s"

    def wt_type(g: Graph) -> str:
        g.tensor("wt").dtype = "int8"
        g.tensor("wt").data = data(g, "wt").astype(np.int8)
        return "wt"

    def wf_zero_point(g: Graph) -> str:
        g.tensor("wf").quant = qp(g.tensor("wf").scale, 3)
        return "wf"

    def bias_scale(g: Graph) -> str:
        g.tensor("b").quant = qp(1.0)
        return "b"

    def state_shape(g: Graph) -> str:
        s = g.tensor("s")
        s.shape = (1, s.shape[1] + 1)
        return "s"

    def rank(g: Graph) -> str:
        g.ops[0].attrs["rank"] = 3
        return "wf"

    def int16_input(g: Graph) -> str:
        g.tensor("x").dtype = "int16"
        g.tensor("x").quant = qp(g.tensor("x").scale, 0)
        return "x"

    def state_float(g: Graph) -> str:
        g.tensor("s").dtype = "int32"
        return "s"

    return [("absent bias", drop_bias, "bias"), ("state not variable", not_variable, "variable"),
            ("time weights type", wt_type, "weights_time"),
            ("asymmetric weights", wf_zero_point, "zero point"),
            ("bias scale", bias_scale, "scale"), ("state shape", state_shape, "activation_state"),
            ("rank", rank, "rank"), ("int16 input", int16_input, "int16"),
            ("int32 state", state_float, "int16 or int8")]


@pytest.mark.parametrize("what,mutate,word", _mutations(), ids=[m[0] for m in _mutations()])
def test_refusals_name_op_and_tensor(what: str, mutate: Any, word: str) -> None:
    g = svdf_case(np.random.default_rng(1410), Config(units=4))
    tensor = mutate(g)
    with pytest.raises(UnsupportedError) as e:
        verify(g)
    msg = str(e.value)
    assert "svdf" in msg and "SVDF" in msg, msg
    assert re.search(rf"\b{tensor}\b", msg) and word in msg, msg
    assert "\n" not in msg
