"""DEPTHWISE_CONV_2D, FULLY_CONNECTED and ADD, checked three ways on seeded random cases.

1. The numpy reference (the op's `reference`) against a deliberately naive scalar transcription of
   TFLite's reference kernels written here, with its own copy of the integer arithmetic and of
   TFLM's multiplier formulas, so that a slip in tinyengine/quant.py or in an op's vectorisation
   cannot hide behind itself.
2. Each C kernel, called with exactly what the op's `emit()` produces, against the reference.
3. Kernel domains: a specialised kernel outside its domain returns TE_ERR_ARG, and emit() picks it
   only inside.
Where the tflite-micro package is installed, single-op models built with its model_editor also
run through TFLM itself.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from tinyengine import quant
from tinyengine.ir import Graph, Op, QuantParams, Tensor
from tinyengine.ops import base, depthwise, fully_connected
from tinyengine.ops.common import window_padding

from . import ckernels

TE_OK, TE_ERR_ARG = 0, 1
ACTS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")

# ---------------------------------------------------------------------------------------------
# Naive scalar TFLite arithmetic (tensorflow/lite/kernels/internal/common.h, quantization_util.cc)
# ---------------------------------------------------------------------------------------------

I32_MIN, I32_MAX = -(1 << 31), (1 << 31) - 1


def n_wrap32(x: int) -> int:
    return (x + (1 << 31)) % (1 << 32) - (1 << 31)


def n_cdiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def n_srdhm(a: int, b: int) -> int:
    if a == I32_MIN and b == I32_MIN:
        return I32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return n_cdiv(ab + nudge, 1 << 31)


def n_rdbpot(x: int, exponent: int) -> int:
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def n_mbqm(x: int, m: int, shift: int) -> int:
    """MultiplyByQuantizedMultiplier, double rounding (TFLITE_SINGLE_ROUNDING unset in TFLM)."""
    left, right = (shift, 0) if shift > 0 else (0, -shift)
    return n_rdbpot(n_srdhm(n_wrap32(x * (1 << left)), m), right)


def n_mbqm_lt1(x: int, m: int, left_shift: int) -> int:
    """MultiplyByQuantizedMultiplierSmallerThanOneExp."""
    return n_rdbpot(n_srdhm(x, m), -left_shift)


def n_round(x: float) -> int:
    """TfLiteRound / std::round: half away from zero."""
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def n_quantize_multiplier(d: float) -> tuple[int, int]:
    if d == 0.0:
        return 0, 0
    q, shift = math.frexp(d)
    q_fixed = n_round(q * (1 << 31))
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def n_act_range(act: str, scale: float, zp: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized: f / scale in float32, then TfLiteRound."""
    def q(f: float) -> int:
        return zp + n_round(float(np.float32(f) / np.float32(scale)))
    lo, hi = {"NONE": (-128, 127), "RELU": (q(0.0), 127), "RELU6": (q(0.0), q(6.0)),
              "RELU_N1_TO_1": (q(-1.0), q(1.0))}[act]
    return max(-128, lo), min(127, hi)


def n_conv_multipliers(in_s: float, w_scales: np.ndarray, out_s: float,
                       n: int) -> list[tuple[int, int]]:
    """PopulateConvolutionQuantizationParams: per channel, broadcasting a per-tensor scale."""
    ws = [float(s) for s in w_scales]
    return [n_quantize_multiplier(float(in_s) * (ws[c] if len(ws) > 1 else ws[0]) / float(out_s))
            for c in range(n)]


# ---------------------------------------------------------------------------------------------
# Naive scalar ops, transcribed from TFLite's reference_integer_ops
# ---------------------------------------------------------------------------------------------

def n_depthwise(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, in_zp: int, out_zp: int,
                mults: list[tuple[int, int]], act: tuple[int, int], stride: tuple[int, int],
                dil: tuple[int, int], pad: tuple[int, int], m: int,
                out_hw: tuple[int, int]) -> np.ndarray:
    """DepthwiseConvPerChannel."""
    batches, ih, iw, ic_n = x.shape
    oc_n = w.shape[3]
    out = np.zeros((batches, out_hw[0], out_hw[1], oc_n), np.int8)
    for n in range(batches):
        for oy in range(out_hw[0]):
            for ox in range(out_hw[1]):
                for ic in range(ic_n):
                    for mi in range(m):
                        oc = mi + ic * m
                        acc = 0
                        for fy in range(w.shape[1]):
                            for fx in range(w.shape[2]):
                                in_x = ox * stride[1] - pad[1] + dil[1] * fx
                                in_y = oy * stride[0] - pad[0] + dil[0] * fy
                                if 0 <= in_x < iw and 0 <= in_y < ih:
                                    acc += int(w[0, fy, fx, oc]) * (int(x[n, in_y, in_x, ic])
                                                                    - in_zp)
                        if b is not None:
                            acc += int(b[oc])
                        acc = n_mbqm(n_wrap32(acc), *mults[oc]) + out_zp
                        out[n, oy, ox, oc] = min(max(acc, act[0]), act[1])
    return out


def n_fully_connected(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, in_zp: int,
                      w_offset: int, out_zp: int, mults: list[tuple[int, int]],
                      act: tuple[int, int]) -> np.ndarray:
    """FullyConnected (one multiplier, filter offset) / FullyConnectedPerChannel."""
    n_out, n_in = w.shape
    rows = x.reshape(-1, n_in)
    out = np.zeros((rows.shape[0], n_out), np.int8)
    for r in range(rows.shape[0]):
        for o in range(n_out):
            acc = 0
            for d in range(n_in):
                acc += (int(w[o, d]) + w_offset) * (int(rows[r, d]) - in_zp)
            if b is not None:
                acc += int(b[o])
            mult, shift = mults[o] if len(mults) > 1 else mults[0]
            acc = n_mbqm(n_wrap32(acc), mult, shift) + out_zp
            out[r, o] = min(max(acc, act[0]), act[1])
    return out


def n_add(x1: np.ndarray, x2: np.ndarray, s1: float, z1: int, s2: float, z2: int, so: float,
          zo: int, act: tuple[int, int]) -> np.ndarray:
    """CalculateOpDataAdd + AddFunc, broadcasting the way BroadcastAdd6DSlow indexes."""
    left_shift = 20
    twice_max = 2 * float(max(np.float32(s1), np.float32(s2)))
    m1 = n_quantize_multiplier(float(s1) / twice_max)
    m2 = n_quantize_multiplier(float(s2) / twice_max)
    mo = n_quantize_multiplier(twice_max / ((1 << left_shift) * float(so)))
    assert m1[1] <= 0 and m2[1] <= 0 and mo[1] <= 0
    shape = np.broadcast_shapes(x1.shape, x2.shape)
    out = np.zeros(shape, np.int8)

    def at(x: np.ndarray, idx: tuple[int, ...]) -> int:
        pad = len(idx) - x.ndim
        return int(x[tuple(0 if x.shape[k] == 1 else idx[pad + k] for k in range(x.ndim))])

    for idx in np.ndindex(*shape):
        v1 = (at(x1, idx) - z1) * (1 << left_shift)
        v2 = (at(x2, idx) - z2) * (1 << left_shift)
        raw = n_mbqm_lt1(v1, *m1) + n_mbqm_lt1(v2, *m2)
        y = n_mbqm_lt1(raw, *mo) + zo
        out[idx] = min(max(y, act[0]), act[1])
    return out


# ---------------------------------------------------------------------------------------------
# Seeded random cases, as IR graphs
# ---------------------------------------------------------------------------------------------

def qp(scale: Any, zp: Any = 0, axis: int = 0) -> QuantParams:
    return QuantParams(np.atleast_1d(np.asarray(scale, np.float32)),
                       np.atleast_1d(np.asarray(zp, np.int64)), axis)


def i8(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(-128, 128, shape).astype(np.int8)


def act_tensor(name: str, shape: tuple[int, ...], rng: np.random.Generator,
               scale: float | None = None) -> Tensor:
    s = float(rng.uniform(0.005, 0.1)) if scale is None else scale
    return Tensor(name, tuple(shape), "int8", qp(s, int(rng.integers(-128, 128))))


def one_op_graph(op: Op, tensors: list[Tensor]) -> Graph:
    ts = {t.name: t for t in tensors}
    inputs = [n for n in op.inputs if n and not ts[n].is_const]
    return Graph(ts, [op], inputs, list(op.outputs))


def out_scale_for(rng: np.random.Generator, in_s: float, w_s: float, taps: int) -> float:
    """An output scale near the accumulator's spread, so results neither vanish nor all clip."""
    return float(in_s * w_s * 74.0 * 74.0 * math.sqrt(taps) / 50.0 * rng.uniform(0.3, 3.0))


def depthwise_case(rng: np.random.Generator, force_3x3: bool = False) -> tuple[Graph, Op]:
    n = int(rng.integers(1, 3))
    c = int(rng.integers(1, 5))
    m = 1 if force_3x3 else int(rng.integers(1, 4))
    fh, fw = (3, 3) if force_3x3 else (int(rng.integers(1, 8)), int(rng.integers(1, 8)))
    stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    dil = (1, 1) if force_3x3 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    ih, iw = int(rng.integers(1, 10)), int(rng.integers(1, 10))
    padding = str(rng.choice(["SAME", "VALID"]))
    if padding == "VALID" and ((fh - 1) * dil[0] + 1 > ih or (fw - 1) * dil[1] + 1 > iw):
        padding = "SAME"
    x = act_tensor("x", (n, ih, iw, c), rng)
    per_channel = bool(rng.integers(0, 2)) and c * m > 1
    w_scales = rng.uniform(0.001, 0.02, c * m if per_channel else 1)
    w = Tensor("w", (1, fh, fw, c * m), "int8", qp(w_scales, np.zeros(w_scales.size), 3),
               i8(rng, (1, fh, fw, c * m)))
    tensors = [x, w]
    bias = ""
    if rng.integers(0, 4):
        tensors.append(Tensor("b", (c * m,), "int32", None,
                              rng.integers(-30000, 30000, c * m).astype(np.int32)))
        bias = "b"
    op = Op("dw", "DEPTHWISE_CONV_2D", ["x", "w", bias], ["y"],
            {"stride": stride, "dilation": dil, "padding": padding,
             "activation": str(rng.choice(ACTS)), "depth_multiplier": m})
    so = out_scale_for(rng, x.scale, float(w_scales.mean()), fh * fw)
    g = one_op_graph(op, tensors + [act_tensor("y", (1, 1, 1, 1), rng, so)])
    g.tensors["y"].shape = depthwise.DepthwiseConv2D().infer_shapes(g, op)[0]
    return g, op


def fc_case(rng: np.random.Generator) -> tuple[Graph, Op]:
    n_in, n_out = int(rng.integers(1, 41)), int(rng.integers(1, 21))
    batches = int(rng.integers(1, 4))
    keep = bool(rng.integers(0, 2))
    lead = [int(d) for d in rng.integers(1, 3, int(rng.integers(0, 3)))]
    if keep:
        x_shape = tuple(lead) + (n_in,)
    else:  # any rank whose size is a multiple of in_features
        x_shape = (batches, n_in) if rng.integers(0, 2) else (batches, 1, n_in)
    x = act_tensor("x", x_shape, rng)
    per_channel = bool(rng.integers(0, 2)) and n_out > 1
    if per_channel:
        wq = qp(rng.uniform(0.001, 0.02, n_out), np.zeros(n_out), 0)
    else:
        wq = qp(rng.uniform(0.001, 0.02), int(rng.integers(-128, 128)) if rng.integers(0, 2) else 0)
    w = Tensor("w", (n_out, n_in), "int8", wq, i8(rng, (n_out, n_in)))
    tensors = [x, w]
    bias = ""
    if rng.integers(0, 4):
        tensors.append(Tensor("b", (n_out,), "int32", None,
                              rng.integers(-30000, 30000, n_out).astype(np.int32)))
        bias = "b"
    op = Op("fc", "FULLY_CONNECTED", ["x", "w", bias], ["y"],
            {"activation": str(rng.choice(ACTS)), "keep_num_dims": keep})
    so = out_scale_for(rng, x.scale, float(wq.scale.mean()), n_in)
    g = one_op_graph(op, tensors + [act_tensor("y", (1,), rng, so)])
    g.tensors["y"].shape = fully_connected.FullyConnected().infer_shapes(g, op)[0]
    return g, op


def add_shapes(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    kind = int(rng.integers(0, 3))
    rank = int(rng.integers(1, 5))
    full = tuple(int(d) for d in rng.integers(1, 6, rank))
    if kind == 0:
        return full, full
    full4 = tuple(int(d) for d in rng.integers(1, 5, 4))
    a = tuple(d if rng.integers(0, 2) else 1 for d in full4)
    b = tuple(d if rng.integers(0, 2) else 1 for d in full4)
    if kind == 2:  # numpy aligns the right-most dimensions: drop some leading ones of b
        b = b[int(rng.integers(0, 4)):]
    return (a, b) if rng.integers(0, 2) else (b, a)


def add_case(rng: np.random.Generator) -> tuple[Graph, Op]:
    sa, sb = add_shapes(rng)
    a = act_tensor("a", sa, rng)
    b = act_tensor("b", sb, rng, float(a.scale * rng.uniform(0.2, 5.0)))
    if rng.integers(0, 4) == 0:  # a constant operand lives in flash
        b.data = i8(rng, sb)
    so = float(max(a.scale, b.scale) * rng.uniform(0.8, 3.0))
    op = Op("add", "ADD", ["a", "b"], ["y"], {"activation": str(rng.choice(ACTS))})
    out = tuple(int(d) for d in np.broadcast_shapes(sa, sb))
    return one_op_graph(op, [a, b, act_tensor("y", out, rng, so)]), op


def op_inputs(rng: np.random.Generator, g: Graph, op: Op) -> list[np.ndarray | None]:
    vals: list[np.ndarray | None] = []
    for name in op.inputs:
        if not name:
            vals.append(None)
            continue
        t = g.tensor(name)
        vals.append(t.data if t.is_const else i8(rng, t.shape))
    return vals


def run_reference(g: Graph, op: Op, vals: list[np.ndarray | None]) -> np.ndarray:
    opdef = base.get_op(op.kind)
    opdef.check(g, op)
    assert tuple(opdef.infer_shapes(g, op)[0]) == g.tensor(op.outputs[0]).shape
    (y,) = opdef.reference(g, op, vals)  # type: ignore[arg-type]  # None = absent input
    assert y.dtype == np.int8 and y.shape == g.tensor(op.outputs[0]).shape
    return y


N_CASES = 40


# ---------------------------------------------------------------------------------------------
# 1. numpy reference == naive TFLite transcription
# ---------------------------------------------------------------------------------------------

def test_depthwise_reference_matches_naive() -> None:
    rng = np.random.default_rng(1001)
    for i in range(N_CASES):
        g, op = depthwise_case(rng, force_3x3=i % 5 == 0)
        vals = op_inputs(rng, g, op)
        x, w, b = vals
        xt, wt, yt = g.tensor("x"), g.tensor("w"), g.tensor("y")
        assert x is not None and w is not None and wt.quant is not None
        _, oh, ow, oc = yt.shape
        _, _, ph, pw = window_padding(op, x.shape[1], x.shape[2], w.shape[1], w.shape[2])
        expected = n_depthwise(x, w, b, xt.zero_point, yt.zero_point,
                               n_conv_multipliers(xt.scale, wt.quant.scale, yt.scale, oc),
                               n_act_range(op.attrs["activation"], yt.scale, yt.zero_point),
                               op.attrs["stride"], op.attrs["dilation"], (ph, pw),
                               op.attrs["depth_multiplier"], (oh, ow))
        np.testing.assert_array_equal(run_reference(g, op, vals), expected, err_msg=f"case {i}")


def test_fully_connected_reference_matches_naive() -> None:
    rng = np.random.default_rng(1002)
    for i in range(N_CASES):
        g, op = fc_case(rng)
        vals = op_inputs(rng, g, op)
        x, w, b = vals
        xt, wt, yt = g.tensor("x"), g.tensor("w"), g.tensor("y")
        assert x is not None and w is not None and wt.quant is not None
        # Per tensor too, the installed TFLM multiplies the scales in double (see the pin below).
        mults = n_conv_multipliers(xt.scale, wt.quant.scale, yt.scale, w.shape[0])
        w_offset = 0 if wt.quant.per_channel else -wt.zero_point
        expected = n_fully_connected(x, w, b, xt.zero_point, w_offset, yt.zero_point, mults,
                                     n_act_range(op.attrs["activation"], yt.scale, yt.zero_point))
        np.testing.assert_array_equal(run_reference(g, op, vals), expected.reshape(yt.shape),
                                      err_msg=f"case {i}")


def test_add_reference_matches_naive() -> None:
    rng = np.random.default_rng(1003)
    for i in range(N_CASES):
        g, op = add_case(rng)
        vals = op_inputs(rng, g, op)
        a, b, y = g.tensor("a"), g.tensor("b"), g.tensor("y")
        expected = n_add(vals[0], vals[1], a.scale, a.zero_point, b.scale, b.zero_point,  # type: ignore[arg-type]
                         y.scale, y.zero_point,
                         n_act_range(op.attrs["activation"], y.scale, y.zero_point))
        np.testing.assert_array_equal(run_reference(g, op, vals), expected, err_msg=f"case {i}")


# ---------------------------------------------------------------------------------------------
# 2. C kernels, called exactly as emit() says, == numpy reference
# ---------------------------------------------------------------------------------------------

CDEF = """
typedef enum { TE_OK = 0, TE_ERR_ARG = 1, TE_ERR_SCRATCH = 2 } te_status_t;
typedef struct { int32_t n; int32_t h; int32_t w; int32_t c; } te_dims_t;
typedef struct { const int32_t *multiplier; const int8_t *shift; int32_t per_channel; }
    te_requant_t;
typedef struct { int32_t input_offset; int32_t output_offset; int32_t act_min; int32_t act_max; }
    te_quant_t;

typedef struct {
    te_dims_t input; te_dims_t filter; te_dims_t output;
    int32_t depth_multiplier;
    int32_t stride_h; int32_t stride_w; int32_t dilation_h; int32_t dilation_w;
    int32_t pad_h; int32_t pad_w;
    te_quant_t q; te_requant_t rq;
} te_depthwise_conv_params_t;
te_status_t te_depthwise_conv_s8(const te_depthwise_conv_params_t *p, const int8_t *input,
                                 const int8_t *filter, const int32_t *bias, int8_t *output);
te_status_t te_depthwise_conv_3x3_s8(const te_depthwise_conv_params_t *p, const int8_t *input,
                                     const int8_t *filter, const int32_t *bias, int8_t *output);
""" + "".join(f"""te_status_t te_depthwise_conv_{path}_s8(const te_depthwise_conv_params_t *p,
    const int8_t *input, const int8_t *filter, const int32_t *bias, int8_t *output);
""" for path in ("portable", "3x3_portable", "3x3_w9", "3x3_w9_partial", "w9", "w9_partial",
                 "pairs", "pairs_partial", "quads", "quads_partial")) + """

typedef struct {
    int32_t batches; int32_t in_features; int32_t out_features; int32_t filter_offset;
    te_quant_t q; te_requant_t rq;
} te_fully_connected_params_t;
te_status_t te_fully_connected_s8(const te_fully_connected_params_t *p, const int8_t *input,
                                  const int8_t *weights, const int32_t *bias, int8_t *output);
te_status_t te_fully_connected_i4_s8(const te_fully_connected_params_t *p, const int8_t *input,
                                     const int32_t *weights, const int32_t *bias, int8_t *output);
""" + "".join(f"""te_status_t te_fully_connected_{path}_s8(const te_fully_connected_params_t *p,
    const int8_t *input, const int8_t *weights, const int32_t *bias, int8_t *output);
""" for path in ("portable", "general", "one_in", "few", "per_tensor")) + """

typedef struct { te_dims_t dims; int32_t offset; int32_t multiplier; int32_t shift; }
    te_add_input_t;
typedef struct {
    te_add_input_t input1; te_add_input_t input2; te_dims_t output;
    int32_t left_shift; int32_t output_multiplier; int32_t output_shift; int32_t output_offset;
    int32_t act_min; int32_t act_max;
} te_add_params_t;
te_status_t te_add_s8(const te_add_params_t *p, const int8_t *input1, const int8_t *input2,
                      int8_t *output);
"""


@pytest.fixture(scope="module")
def kernels() -> tuple[Any, Any]:
    return ckernels.build(["te_depthwise.h", "te_fc.h", "te_add.h"],
                          ["te_depthwise.c", "te_fc.c", "te_add.c"], CDEF)


class CCall:
    """Turns an OpEmission into a C call: a params struct and the argument pointers."""

    def __init__(self, ffi: Any, em: Any) -> None:
        self.ffi, self.em = ffi, em
        self.keep: list[Any] = []  # arrays the struct points into must outlive the call
        self.consts = {c.name: np.ascontiguousarray(c.values) for c in em.consts}
        self.params = ffi.new(f"{em.params_type} *")
        self._fill(self.params[0], list(em.params.items()))

    def _fill(self, cdata: Any, items: list[tuple[str, Any]]) -> None:
        fields = [f for f, _ in self.ffi.typeof(cdata).fields]
        assert [k for k, _ in items] == fields[:len(items)], "params out of struct field order"
        for key, value in items:
            if isinstance(value, list):
                sub = getattr(cdata, key)
                sub_fields = [f for f, _ in self.ffi.typeof(sub).fields]
                self._fill(sub, list(zip(sub_fields, value, strict=True)))
            elif isinstance(value, str):
                assert value.startswith("@"), value
                arr = self.consts[value[1:]]
                ptr = self.ffi.from_buffer(f"{arr.dtype}_t[]", arr)
                self.keep.append(ptr)
                setattr(cdata, key, ptr)
            else:
                setattr(cdata, key, value)

    def __call__(self, lib: Any, tensors: dict[str, np.ndarray], kernel: str | None = None) -> int:
        args = []
        for a in self.em.args:
            if a.kind == "tensor":
                arr = tensors[a.ref]
            elif a.ref:
                arr = self.consts[a.ref]
            else:
                args.append(self.ffi.NULL)
                continue
            assert arr.flags.c_contiguous
            args.append(self.ffi.from_buffer(f"{arr.dtype}_t[]", arr))
        return int(getattr(lib, kernel or self.em.kernel)(self.params, *args))


def c_matches_reference(kernels: tuple[Any, Any], g: Graph, op: Op,
                        vals: list[np.ndarray | None], also: tuple[str, ...] = ()) -> None:
    ffi, lib = kernels
    expected = run_reference(g, op, vals)
    em = base.get_op(op.kind).emit(g, op)
    call = CCall(ffi, em)
    for kernel in (em.kernel,) + also:
        tensors = {n: np.ascontiguousarray(v) for n, v in zip(op.inputs, vals, strict=True)
                   if n and v is not None and not g.tensor(n).is_const}
        out = np.full(g.tensor(op.outputs[0]).shape, 55, np.int8)
        tensors[op.outputs[0]] = out
        assert call(lib, tensors, kernel) == TE_OK, kernel
        np.testing.assert_array_equal(out, expected, err_msg=f"{op.kind} {kernel}")


def test_depthwise_c_kernels_match_reference(kernels: tuple[Any, Any]) -> None:
    rng = np.random.default_rng(2001)
    chosen = set()
    for i in range(2 * N_CASES):
        g, op = depthwise_case(rng, force_3x3=i % 3 == 0)
        em = base.get_op(op.kind).emit(g, op)
        p: dict[str, Any] = em.params
        in_domain = depthwise.use_3x3_kernel(p["depth_multiplier"], p["filter"][1],
                                             p["filter"][2], (p["dilation_h"], p["dilation_w"]),
                                             (p["pad_h"], p["pad_w"]))
        # The `kernel` hook names the variant; the emission calls that variant's path
        # (tests/test_kernel_paths.py), which this build (no SIMD) runs as its portable loop.
        kernel = base.get_op(op.kind).kernel(g, op)
        assert (kernel == "te_depthwise_conv_3x3_s8") == in_domain
        assert em.kernel.startswith("te_depthwise_conv_3x3_") == in_domain, em.kernel
        chosen.add(kernel)
        # In its domain the specialised kernel must agree with the generic one as well.
        also = ("te_depthwise_conv_s8",) if in_domain else ()
        c_matches_reference(kernels, g, op, op_inputs(rng, g, op), also)
    assert chosen == {"te_depthwise_conv_s8", "te_depthwise_conv_3x3_s8"}


def test_fully_connected_c_kernel_matches_reference(kernels: tuple[Any, Any]) -> None:
    rng = np.random.default_rng(2002)
    for _ in range(N_CASES):
        g, op = fc_case(rng)
        c_matches_reference(kernels, g, op, op_inputs(rng, g, op))


def test_add_c_kernel_matches_reference(kernels: tuple[Any, Any]) -> None:
    rng = np.random.default_rng(2003)
    for _ in range(N_CASES):
        g, op = add_case(rng)
        c_matches_reference(kernels, g, op, op_inputs(rng, g, op))


def test_add_c_kernel_runs_in_place(kernels: tuple[Any, Any]) -> None:
    """The output may alias a full-shape input (the planner can reuse a dead input's buffer)."""
    ffi, lib = kernels
    rng = np.random.default_rng(2004)
    for _ in range(10):
        g, op = add_case(rng)
        vals = op_inputs(rng, g, op)
        if g.tensor("a").is_const or g.tensor("a").shape != g.tensor("y").shape:
            continue
        expected = run_reference(g, op, vals)
        call = CCall(ffi, base.get_op(op.kind).emit(g, op))
        buf = np.ascontiguousarray(vals[0]).copy()
        tensors = {"a": buf, "y": buf}
        if not g.tensor("b").is_const:
            tensors["b"] = np.ascontiguousarray(vals[1])
        assert call(lib, tensors) == TE_OK
        np.testing.assert_array_equal(buf, expected)


# ---------------------------------------------------------------------------------------------
# 3. Kernel domains and argument checks
# ---------------------------------------------------------------------------------------------

def _dw_params(ffi: Any, **over: Any) -> tuple[Any, list[Any]]:
    """A valid 3x3, multiplier-1 parameter block on an 1x5x5x2 input, with fields overridden."""
    mult = np.full(6, 1 << 30, np.int32)
    shift = np.zeros(6, np.int8)
    keep = [ffi.from_buffer("int32_t[]", mult), ffi.from_buffer("int8_t[]", shift)]
    p = ffi.new("te_depthwise_conv_params_t *", {
        "input": [1, 5, 5, 2], "filter": [1, 3, 3, 2], "output": [1, 5, 5, 2],
        "depth_multiplier": 1, "stride_h": 1, "stride_w": 1, "dilation_h": 1, "dilation_w": 1,
        "pad_h": 1, "pad_w": 1, "q": [0, 0, -128, 127], "rq": [keep[0], keep[1], 0]})
    for key, value in over.items():
        setattr(p, key, value)
    return p, keep


def test_depthwise_3x3_kernel_rejects_calls_outside_its_domain(kernels: tuple[Any, Any]) -> None:
    ffi, lib = kernels
    x = np.zeros(1 * 5 * 5 * 6, np.int8)
    f = np.zeros(5 * 5 * 6, np.int8)
    y = np.zeros(1 * 5 * 5 * 6, np.int8)
    buf = [ffi.from_buffer("int8_t[]", a) for a in (x, f, y)]
    p, keep = _dw_params(ffi)
    assert lib.te_depthwise_conv_3x3_s8(p, buf[0], buf[1], ffi.NULL, buf[2]) == TE_OK
    outside: list[dict[str, Any]] = [
        {"depth_multiplier": 3, "filter": [1, 3, 3, 6], "output": [1, 5, 5, 6]},
        {"filter": [1, 5, 5, 2]},
        {"filter": [1, 3, 1, 2]},
        {"dilation_h": 2},
        {"dilation_w": 2},
        {"pad_h": 2},
        {"pad_w": 2},
    ]
    for over in outside:
        p, keep = _dw_params(ffi, **over)
        assert lib.te_depthwise_conv_3x3_s8(p, buf[0], buf[1], ffi.NULL, buf[2]) == TE_ERR_ARG, over
        # The generic kernel takes every one of these.
        assert lib.te_depthwise_conv_s8(p, buf[0], buf[1], ffi.NULL, buf[2]) == TE_OK, over


def test_kernels_reject_bad_arguments(kernels: tuple[Any, Any]) -> None:
    ffi, lib = kernels
    x = ffi.from_buffer("int8_t[]", np.zeros(64, np.int8))
    p, keep = _dw_params(ffi)
    for fn in (lib.te_depthwise_conv_s8, lib.te_depthwise_conv_3x3_s8):
        assert fn(p, ffi.NULL, x, ffi.NULL, x) == TE_ERR_ARG
        assert fn(ffi.NULL, x, x, ffi.NULL, x) == TE_ERR_ARG
    for over in ({"output": [1, 5, 5, 3]}, {"filter": [2, 3, 3, 2]}, {"stride_h": 0},
                 {"depth_multiplier": 0}, {"pad_w": -1}):
        p, keep = _dw_params(ffi, **over)
        assert lib.te_depthwise_conv_s8(p, x, x, ffi.NULL, x) == TE_ERR_ARG, over

    m = np.array([1 << 30], np.int32)
    s = np.array([0], np.int8)
    rq = [ffi.from_buffer("int32_t[]", m), ffi.from_buffer("int8_t[]", s)]
    fc = ffi.new("te_fully_connected_params_t *", {
        "batches": 2, "in_features": 4, "out_features": 3, "filter_offset": 0,
        "q": [0, 0, -128, 127], "rq": [rq[0], rq[1], 0]})
    assert lib.te_fully_connected_s8(fc, x, x, ffi.NULL, x) == TE_OK
    assert lib.te_fully_connected_s8(fc, x, ffi.NULL, ffi.NULL, x) == TE_ERR_ARG
    for key, value in (("in_features", 0), ("filter_offset", 129), ("filter_offset", -128)):
        setattr(fc, key, value)
        assert lib.te_fully_connected_s8(fc, x, x, ffi.NULL, x) == TE_ERR_ARG, key
        fc.filter_offset, fc.in_features = 0, 4
    fc.rq.per_channel, fc.filter_offset = 1, 3  # TFLM never applies an offset per channel
    assert lib.te_fully_connected_s8(fc, x, x, ffi.NULL, x) == TE_ERR_ARG

    def add_params(**over: Any) -> Any:
        p = ffi.new("te_add_params_t *", {
            "input1": [[1, 2, 2, 4], 0, 1 << 30, -1], "input2": [[1, 1, 1, 4], 0, 1 << 30, -1],
            "output": [1, 2, 2, 4], "left_shift": 20, "output_multiplier": 1 << 30,
            "output_shift": -20, "output_offset": 0, "act_min": -128, "act_max": 127})
        for key, value in over.items():
            setattr(p, key, value)
        return p

    assert lib.te_add_s8(add_params(), x, x, x) == TE_OK
    assert lib.te_add_s8(add_params(), x, ffi.NULL, x) == TE_ERR_ARG
    bad_add: list[dict[str, Any]] = [
        {"output": [1, 2, 3, 4]}, {"left_shift": 21}, {"output_shift": 1},
        {"act_min": 5, "act_max": 4}, {"input1": [[1, 2, 2, 4], 129, 1 << 30, -1]},
        {"input2": [[1, 1, 1, 4], 0, 1 << 30, 2]}]
    for bad in bad_add:
        assert lib.te_add_s8(add_params(**bad), x, x, x) == TE_ERR_ARG, bad


def test_unsupported_configurations_raise() -> None:
    from tinyengine.errors import UnsupportedError

    rng = np.random.default_rng(3)
    g, op = depthwise_case(rng)
    g.tensors["w"].quant.zero_point[:] = 1  # type: ignore[union-attr]
    with pytest.raises(UnsupportedError, match="dw"):
        base.get_op(op.kind).check(g, op)
    g, op = depthwise_case(rng)
    op.attrs["depth_multiplier"] += 1
    with pytest.raises(UnsupportedError, match="depth multiplier"):
        base.get_op(op.kind).check(g, op)
    g, op = add_case(rng)
    g.tensors["b"].shape = (7, 3, 2, 2, 9)
    with pytest.raises(UnsupportedError, match="broadcast"):
        base.get_op(op.kind).check(g, op)
    g, op = fc_case(rng)
    g.tensors["x"].shape = (g.tensor("w").shape[1] + 1, 1)
    with pytest.raises(UnsupportedError, match="input features"):
        base.get_op(op.kind).check(g, op)


# ---------------------------------------------------------------------------------------------
# TFLM itself, on single-op models built with tflite-micro's model_editor
# ---------------------------------------------------------------------------------------------

def _tflm_run(g: Graph, op: Op, vals: list[np.ndarray | None]) -> np.ndarray:
    me = pytest.importorskip("tflite_micro.tensorflow.lite.micro.compression.model_editor")
    from tflite_micro import runtime
    fb = me.tflite
    types_ = {"int8": fb.TensorType.INT8, "int32": fb.TensorType.INT32}
    acts = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}

    def tensor(name: str) -> Any:
        t = g.tensor(name)
        q = None
        if t.quant is not None:
            q = me.Quantization([float(s) for s in t.quant.scale],
                                [int(z) for z in t.quant.zero_point],
                                t.quant.axis if t.quant.per_channel else None)
        elif t.dtype == "int32":  # bias: scale input * filter, which TFLM's FC checks
            xs, w = g.tensor(op.inputs[0]), g.tensor(op.inputs[1])
            assert w.quant is not None
            q = me.Quantization([float(np.float32(xs.scale) * s) for s in w.quant.scale],
                                [0] * w.quant.scale.size, 0 if w.quant.per_channel else None)
        return me.Tensor(shape=t.shape, dtype=types_[t.dtype], data=t.data, quantization=q,
                         name=name)

    ts = {n: tensor(n) for n in g.tensors}
    act = acts[op.attrs.get("activation", "NONE")]
    if op.kind == "DEPTHWISE_CONV_2D":
        code, opts = fb.BuiltinOperator.DEPTHWISE_CONV_2D, fb.DepthwiseConv2DOptionsT()
        opts.padding = fb.Padding.SAME if op.attrs["padding"] == "SAME" else fb.Padding.VALID
        opts.strideH, opts.strideW = op.attrs["stride"]
        opts.dilationHFactor, opts.dilationWFactor = op.attrs["dilation"]
        opts.depthMultiplier = op.attrs["depth_multiplier"]
        opts_type = fb.BuiltinOptions.DepthwiseConv2DOptions
    elif op.kind == "FULLY_CONNECTED":
        code, opts = fb.BuiltinOperator.FULLY_CONNECTED, fb.FullyConnectedOptionsT()
        opts.keepNumDims = bool(op.attrs["keep_num_dims"])
        opts_type = fb.BuiltinOptions.FullyConnectedOptions
    else:
        code, opts = fb.BuiltinOperator.ADD, fb.AddOptionsT()
        opts_type = fb.BuiltinOptions.AddOptions
    opts.fusedActivationFunction = act
    # An absent bias is left off rather than written as index -1: TFLM's depthwise Prepare takes
    # three inputs to mean a bias and then frees the null tensor it got for -1 (a segfault).
    names = list(op.inputs)
    while names and not names[-1]:
        names.pop()
    mop = me.Operator(opcode=code, inputs=[ts[n] if n else None for n in names],
                      outputs=[ts[n] for n in op.outputs])
    mop._fb.builtinOptionsType, mop._fb.builtinOptions = opts_type, opts
    model = me.Model(subgraphs=[me.Subgraph(
        tensors=list(ts.values()), operators=[mop], inputs=[ts[n] for n in g.inputs],
        outputs=[ts[n] for n in g.outputs])])
    itp = runtime.Interpreter.from_bytes(bytes(model.build()), arena_size=1 << 20)
    for k, name in enumerate(g.inputs):
        itp.set_input(vals[op.inputs.index(name)], k)
    itp.invoke()
    return itp.get_output(0).reshape(g.tensor(op.outputs[0]).shape)


@pytest.mark.parametrize("make", [depthwise_case, fc_case, add_case],
                         ids=["depthwise", "fully_connected", "add"])
def test_reference_matches_tflm(make: Any) -> None:
    rng = np.random.default_rng(4004)
    for i in range(12):
        g, op = make(rng)
        vals = op_inputs(rng, g, op)
        np.testing.assert_array_equal(run_reference(g, op, vals), _tflm_run(g, op, vals),
                                      err_msg=f"{op.kind} case {i}: {op.attrs}")


def _rule_splitting_case(rng: np.random.Generator) -> tuple[float, float, float, int]:
    """Scales and an accumulator for which the two readings of TFLM's per-tensor multiplier,
    double(float(s_in * s_w)) / s_out and double(s_in) * double(s_w) / s_out, give different
    int8 outputs."""
    while True:
        s_in, s_w = (float(np.float32(v)) for v in rng.uniform(0.01, 0.1, 2))
        s_out = float(np.float32(s_in * s_w / rng.uniform(0.8e-7, 1.2e-7)))
        m32 = n_quantize_multiplier(float(np.float32(s_in) * np.float32(s_w)) / s_out)
        m64 = n_quantize_multiplier(s_in * s_w / s_out)
        if m32 == m64:
            continue
        acc = rng.integers(-(1 << 30), 1 << 30, 1 << 20)
        y32 = quant.multiply_by_quantized_multiplier(acc, *m32)  # vectorised: only a search
        y64 = quant.multiply_by_quantized_multiplier(acc, *m64)
        hits = np.flatnonzero((y32 != y64) & (np.abs(y32) < 100))
        if hits.size:
            return s_in, s_w, s_out, int(acc[hits[0]])


@pytest.mark.parametrize("kind", ["FULLY_CONNECTED", "DEPTHWISE_CONV_2D"])
def test_per_tensor_multiplier_rule_matches_tflm(kind: str) -> None:
    """Pin the multiplier rule on cases where a float32 scale product would give another output.

    The filter is zero, so the accumulator is the bias alone and lands where the rules split.
    """
    rng = np.random.default_rng(77)
    for _ in range(3):
        s_in, s_w, s_out, acc = _rule_splitting_case(rng)
        shape_x, shape_w = ((1, 1), (1, 1)) if kind == "FULLY_CONNECTED" else ((1, 1, 1, 1),) * 2
        attrs: dict[str, Any] = {"activation": "NONE", "keep_num_dims": False}
        if kind == "DEPTHWISE_CONV_2D":
            attrs = {"stride": (1, 1), "dilation": (1, 1), "padding": "VALID",
                     "activation": "NONE", "depth_multiplier": 1}
        op = Op("op", kind, ["x", "w", "b"], ["y"], attrs)
        g = one_op_graph(op, [
            Tensor("x", shape_x, "int8", qp(s_in, 0)),
            Tensor("w", shape_w, "int8", qp(s_w, 0, 3 if len(shape_w) == 4 else 0),
                   np.zeros(shape_w, np.int8)),
            Tensor("b", (1,), "int32", None, np.array([acc], np.int32)),
            Tensor("y", shape_x, "int8", qp(s_out, 0))])
        vals: list[np.ndarray | None] = [np.zeros(shape_x, np.int8), g.tensor("w").data,
                                         g.tensor("b").data]
        y = run_reference(g, op, vals)
        assert int(y.ravel()[0]) == n_mbqm(acc, *n_quantize_multiplier(s_in * s_w / s_out))
        np.testing.assert_array_equal(y, _tflm_run(g, op, vals))
