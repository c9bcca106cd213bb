"""Naive scalar transcriptions of TFLite's 16x8 reference loops (int16 activations, int8
weights) for CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED and TRANSPOSE_CONV, and seeded random
single-op graphs of them, for tests/test_ops_16x8_conv.py.

The transcriptions follow tensorflow/lite/kernels/internal/common.cc and
reference/integer_ops/*.h loop by loop, in Python integers, with their own copy of the int64
MultiplyByQuantizedMultiplier, so that a slip in tinyengine/ops/requant16.py or in an op's
vectorisation cannot hide behind itself.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinyengine.ir import Graph, Op, Tensor, verify
from tinyengine.ops import get_op
from tinyengine.ops.common import out_size, window_padding
from tinyengine.ops.transpose_conv import geometry

from .test_ops_dw_fc_add import i8, n_conv_multipliers, n_mbqm, n_round, n_wrap32, qp

ACTS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
# Uniform int16 values have a standard deviation of about 18918, int8 ones about 74.
SPREAD = 18918.0 * 74.0

# ---------------------------------------------------------------------------------------------
# Naive scalar arithmetic and loops (tensorflow/lite/kernels/internal/common.cc,
# reference/integer_ops/*.h)
# ---------------------------------------------------------------------------------------------


def n_mbqm64(x: int, m: int, shift: int) -> int:
    """MultiplyByQuantizedMultiplier(int64_t x, int32_t m, int shift)."""
    reduced = (m + (1 << 15)) >> 16 if m < 0x7FFF0000 else 0x7FFF
    total = 15 - shift
    return n_wrap32((x * reduced + (1 << (total - 1))) >> total)  # >> floors, as C's on int64


def n_act_range16(act: str, scale: float) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int16 output, zero point 0."""
    def q(f: float) -> int:
        return n_round(float(np.float32(f) / np.float32(scale)))
    lo, hi = {"NONE": (-32768, 32767), "RELU": (q(0.0), 32767), "RELU6": (q(0.0), q(6.0)),
              "RELU_N1_TO_1": (q(-1.0), q(1.0))}[act]
    return max(-32768, lo), min(32767, hi)


def n_scale(acc: int, mult: tuple[int, int], acc_type: str, act: tuple[int, int]) -> int:
    """The end of every 16x8 loop: the rule of the accumulator type, then the clamp."""
    y = n_mbqm64(acc, *mult) if acc_type == "int64" else n_mbqm(n_wrap32(acc), *mult)
    return min(max(y, act[0]), act[1])


def n_conv16(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, mults: list[tuple[int, int]],
             act: tuple[int, int], stride: tuple[int, int], dil: tuple[int, int],
             pad: tuple[int, int], out_hw: tuple[int, int], acc_type: str) -> np.ndarray:
    """ConvPerChannel for int16 input (groups from the filter's depth)."""
    batches, ih, iw, cin = x.shape
    cout, fh, fw, fcin = w.shape
    per_group = cout // (cin // fcin)
    out = np.zeros((batches, out_hw[0], out_hw[1], cout), np.int16)
    for n in range(batches):
        for oy in range(out_hw[0]):
            for ox in range(out_hw[1]):
                for oc in range(cout):
                    g = oc // per_group
                    acc = 0
                    for ky in range(fh):
                        for kx in range(fw):
                            iy, ix = oy * stride[0] - pad[0] + dil[0] * ky, \
                                ox * stride[1] - pad[1] + dil[1] * kx
                            if not (0 <= iy < ih and 0 <= ix < iw):
                                continue
                            for ic in range(fcin):
                                acc += int(w[oc, ky, kx, ic]) * int(x[n, iy, ix, ic + g * fcin])
                    if b is not None:
                        acc += int(b[oc])
                    out[n, oy, ox, oc] = n_scale(acc, mults[oc], acc_type, act)
    return out


def n_depthwise16(x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                  mults: list[tuple[int, int]], act: tuple[int, int], stride: tuple[int, int],
                  dil: tuple[int, int], pad: tuple[int, int], m: int,
                  out_hw: tuple[int, int]) -> np.ndarray:
    """DepthwiseConvPerChannel for int16 input."""
    batches, ih, iw, cin = x.shape
    out = np.zeros((batches, out_hw[0], out_hw[1], cin * m), np.int16)
    for n in range(batches):
        for oy in range(out_hw[0]):
            for ox in range(out_hw[1]):
                for ic in range(cin):
                    for mi in range(m):
                        oc = mi + ic * m
                        acc = 0
                        for ky in range(w.shape[1]):
                            for kx in range(w.shape[2]):
                                iy, ix = oy * stride[0] - pad[0] + dil[0] * ky, \
                                    ox * stride[1] - pad[1] + dil[1] * kx
                                if 0 <= iy < ih and 0 <= ix < iw:
                                    acc += int(w[0, ky, kx, oc]) * int(x[n, iy, ix, ic])
                        if b is not None:
                            acc += int(b[oc])
                        out[n, oy, ox, oc] = n_scale(acc, mults[oc], "int64", act)
    return out


def n_fc16(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, w_offset: int,
           mults: list[tuple[int, int]], act: tuple[int, int], acc_type: str) -> np.ndarray:
    """FullyConnected (filter offset) / FullyConnectedPerChannel for int16 input."""
    n_out, n_in = w.shape
    rows = x.reshape(-1, n_in)
    out = np.zeros((rows.shape[0], n_out), np.int16)
    for r in range(rows.shape[0]):
        for o in range(n_out):
            acc = sum((int(w[o, d]) + w_offset) * int(rows[r, d]) for d in range(n_in))
            if b is not None:
                acc += int(b[o])
            out[r, o] = n_scale(acc, mults[o] if len(mults) > 1 else mults[0], acc_type, act)
    return out


def n_tconv16(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, mults: list[tuple[int, int]],
              act: tuple[int, int], stride: tuple[int, int], pad: tuple[int, int],
              out_shape: tuple[int, ...]) -> np.ndarray:
    """TransposeConv for int16 input: scatter into an int64 scratch of the whole output."""
    batches, ih, iw, cin = x.shape
    cout, fh, fw, _ = w.shape
    _, oh, ow, _ = out_shape
    scratch = np.zeros(out_shape, object)  # Python ints: exact, as int64 is here
    for n in range(batches):
        for iy in range(ih):
            for ix in range(iw):
                for ic in range(cin):
                    for ky in range(fh):
                        for kx in range(fw):
                            for oc in range(cout):
                                oy, ox = iy * stride[0] - pad[0] + ky, ix * stride[1] - pad[1] + kx
                                if 0 <= oy < oh and 0 <= ox < ow:
                                    scratch[n, oy, ox, oc] += int(x[n, iy, ix, ic]) * \
                                        int(w[oc, ky, kx, ic])
    out = np.zeros(out_shape, np.int16)
    for idx in np.ndindex(*out_shape):
        acc = int(scratch[idx]) + (int(b[idx[3]]) if b is not None else 0)
        out[idx] = n_scale(acc, mults[idx[3]], "int64", act)
    return out


# ---------------------------------------------------------------------------------------------
# Seeded random single-op graphs
# ---------------------------------------------------------------------------------------------

def i16(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(-32768, 32768, shape).astype(np.int16)


def act16(name: str, shape: tuple[int, ...], scale: float) -> Tensor:
    return Tensor(name, tuple(shape), "int16", qp(scale, 0))


def weights(rng: np.random.Generator, name: str, shape: tuple[int, ...], axis: int,
            per_channel: bool) -> Tensor:
    n = shape[axis] if per_channel else 1
    return Tensor(name, shape, "int8", qp(rng.uniform(0.002, 0.05, n), np.zeros(n), axis),
                  i8(rng, shape))


def bias_tensor(rng: np.random.Generator, dtype: str | None, n: int, in_s: float,
                w: Tensor) -> Tensor | None:
    """A bias of `dtype` (None: no bias) near the accumulators' spread; an int64 one now and
    then holds a value beyond int32, which the C literals must carry."""
    if dtype is None:
        return None
    values = rng.integers(-3_000_000, 3_000_000, n)
    if dtype == "int16":
        values = rng.integers(-32768, 32768, n)
    elif dtype == "int64" and rng.random() < 0.3:
        values[0] = int(rng.choice([-1, 1])) * ((1 << 33) + int(rng.integers(0, 1 << 20)))
    assert w.quant is not None
    scales = (np.float32(in_s) * w.quant.scale.astype(np.float32)).astype(np.float32)
    scales = np.broadcast_to(scales, (n,)) if scales.size == 1 else scales
    return Tensor("b", (n,), dtype, qp(scales, np.zeros(n), 0),
                  values.astype({"int64": np.int64, "int32": np.int32, "int16": np.int16}[dtype]))


def out_scale(rng: np.random.Generator, in_s: float, w: Tensor, taps: int) -> float:
    """An output scale near the accumulators' spread, so outputs neither vanish nor all clip."""
    assert w.quant is not None
    return float(in_s * float(w.quant.scale.mean()) * SPREAD * math.sqrt(taps) / 8000.0
                 * rng.uniform(0.3, 3.0))


def graph_of(op: Op, tensors: list[Tensor | None]) -> Graph:
    ts = {t.name: t for t in tensors if t is not None}
    g = Graph(ts, [op], [n for n in op.inputs if n and not ts[n].is_const], list(op.outputs))
    g.tensors[op.outputs[0]].shape = tuple(get_op(op.kind).infer_shapes(g, op)[0])
    verify(g)
    return g


def conv16_case(rng: np.random.Generator, bias: str | None = "int64",
                act: str | None = None) -> tuple[Graph, Op]:
    n, groups = int(rng.integers(1, 3)), int(rng.choice([1, 1, 2]))
    gin, cout = int(rng.integers(1, 4)), groups * int(rng.integers(1, 4))
    fh, fw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    dil = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    ih, iw = int(rng.integers(1, 8)), int(rng.integers(1, 8))
    padding = str(rng.choice(["SAME", "VALID"]))
    if (fh - 1) * dil[0] + 1 > ih or (fw - 1) * dil[1] + 1 > iw:
        padding = "SAME"
    in_s = float(rng.uniform(1e-4, 1e-3))
    w = weights(rng, "w", (cout, fh, fw, gin), 0, bool(rng.integers(0, 2)) and cout > 1)
    b = bias_tensor(rng, bias, cout, in_s, w)
    attrs: dict[str, Any] = {"stride": stride, "dilation": dil, "padding": padding,
                             "activation": str(rng.choice(ACTS)) if act is None else act}
    if groups > 1:
        attrs["groups"] = groups
    op = Op("conv", "CONV_2D", ["x", "w", "b" if b is not None else ""], ["y"], attrs)
    return graph_of(op, [act16("x", (n, ih, iw, gin * groups), in_s), w, b,
                         act16("y", (1, 1, 1, 1), out_scale(rng, in_s, w, fh * fw * gin))]), op


def depthwise16_case(rng: np.random.Generator, bias: str | None = "int64",
                     act: str | None = None) -> tuple[Graph, Op]:
    n, c, m = int(rng.integers(1, 3)), int(rng.integers(1, 5)), int(rng.integers(1, 4))
    fh, fw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    dil = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    ih, iw = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    padding = str(rng.choice(["SAME", "VALID"]))
    if (fh - 1) * dil[0] + 1 > ih or (fw - 1) * dil[1] + 1 > iw:
        padding = "SAME"
    in_s = float(rng.uniform(1e-4, 1e-3))
    w = weights(rng, "w", (1, fh, fw, c * m), 3, bool(rng.integers(0, 2)) and c * m > 1)
    b = bias_tensor(rng, bias, c * m, in_s, w)
    op = Op("dw", "DEPTHWISE_CONV_2D", ["x", "w", "b" if b is not None else ""], ["y"],
            {"stride": stride, "dilation": dil, "padding": padding, "depth_multiplier": m,
             "activation": str(rng.choice(ACTS)) if act is None else act})
    return graph_of(op, [act16("x", (n, ih, iw, c), in_s), w, b,
                         act16("y", (1, 1, 1, 1), out_scale(rng, in_s, w, fh * fw))]), op


def fc16_case(rng: np.random.Generator, bias: str | None = "int64", act: str | None = None,
              per_channel: bool | None = None) -> tuple[Graph, Op]:
    n_in, n_out, batches = int(rng.integers(1, 41)), int(rng.integers(1, 17)), \
        int(rng.integers(1, 4))
    keep = bool(rng.integers(0, 2))
    x_shape = (batches, 2, n_in) if keep else (batches, n_in)
    in_s = float(rng.uniform(1e-4, 1e-3))
    pc = bool(rng.integers(0, 2)) if per_channel is None else per_channel
    w = weights(rng, "w", (n_out, n_in), 0, pc and n_out > 1)
    if w.quant is not None and not w.quant.per_channel and rng.random() < 0.3:
        w.quant = qp(w.quant.scale, int(rng.integers(-20, 21)))  # TFLM's weights_offset
    b = bias_tensor(rng, bias, n_out, in_s, w)
    op = Op("fc", "FULLY_CONNECTED", ["x", "w", "b" if b is not None else ""], ["y"],
            {"activation": str(rng.choice(ACTS)) if act is None else act, "keep_num_dims": keep})
    return graph_of(op, [act16("x", x_shape, in_s), w, b,
                         act16("y", (1,), out_scale(rng, in_s, w, n_in))]), op


def tconv16_case(rng: np.random.Generator, bias: str | None = "int64",
                 act: str | None = None) -> tuple[Graph, Op]:
    n, ih, iw = int(rng.integers(1, 3)), int(rng.integers(1, 5)), int(rng.integers(1, 5))
    cin, cout = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    fh, fw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    padding = str(rng.choice(["SAME", "VALID"]))

    def sizes(i: int, f: int, s: int) -> list[int]:  # every output size TensorFlow allows
        return [o for o in range(1, i * s + f + s) if out_size(o, f, s, 1, padding) == i]

    oh, ow = int(rng.choice(sizes(ih, fh, sh))), int(rng.choice(sizes(iw, fw, sw)))
    in_s = float(rng.uniform(1e-4, 1e-3))
    w = weights(rng, "w", (cout, fh, fw, cin), 0, bool(rng.integers(0, 2)) and cout > 1)
    b = bias_tensor(rng, bias, cout, in_s, w)
    taps = cin * math.ceil(fh / sh) * math.ceil(fw / sw)
    op = Op("tconv", "TRANSPOSE_CONV", ["x", "w", "b" if b is not None else ""], ["y"],
            {"output_shape": (n, oh, ow, cout), "stride": (sh, sw), "padding": padding,
             "activation": str(rng.choice(ACTS)) if act is None else act})
    return graph_of(op, [act16("x", (n, ih, iw, cin), in_s), w, b,
                         act16("y", (n, oh, ow, cout), out_scale(rng, in_s, w, taps))]), op


def values(rng: np.random.Generator, g: Graph, op: Op) -> list[np.ndarray | None]:
    out: list[np.ndarray | None] = []
    for name in op.inputs:
        t = g.tensor(name) if name else None
        out.append(None if t is None else t.data if t.is_const else i16(rng, t.shape))
    return out


def reference(g: Graph, op: Op, vals: list[np.ndarray | None]) -> np.ndarray:
    (y,) = get_op(op.kind).reference(g, op, vals)  # type: ignore[arg-type]
    assert y.dtype == np.int16 and y.shape == g.tensor(op.outputs[0]).shape
    return y


def naive(g: Graph, op: Op, vals: list[np.ndarray | None]) -> np.ndarray:
    """The naive transcription of TFLM's loop for this op."""
    x, w, b = vals
    assert x is not None and w is not None
    xt, wt, yt = g.tensor("x"), g.tensor("w"), g.tensor("y")
    assert wt.quant is not None
    n_oc = w.shape[3] if op.kind == "DEPTHWISE_CONV_2D" else w.shape[0]
    mults = n_conv_multipliers(xt.scale, wt.quant.scale, yt.scale, n_oc)
    act = n_act_range16(op.attrs["activation"], yt.scale)
    acc_type = "int64" if b is None or b.dtype != np.int32 else "int32"
    if b is None and op.attrs.get("quantized_bias_type") == "int32":
        acc_type = "int32"
    if op.kind == "FULLY_CONNECTED":
        w_offset = 0 if wt.quant.per_channel else -wt.zero_point
        return n_fc16(x, w, b, w_offset, mults, act, acc_type).reshape(yt.shape)
    if op.kind == "TRANSPOSE_CONV":
        _, _, ph, pw = geometry(g, op)
        return n_tconv16(x, w, b, mults, act, op.attrs["stride"], (ph, pw), yt.shape)
    _, _, ph, pw = window_padding(op, x.shape[1], x.shape[2], w.shape[1], w.shape[2])
    if op.kind == "DEPTHWISE_CONV_2D":
        return n_depthwise16(x, w, b, mults, act, op.attrs["stride"], op.attrs["dilation"],
                             (ph, pw), op.attrs["depth_multiplier"], (yt.shape[1], yt.shape[2]))
    return n_conv16(x, w, b, mults, act, op.attrs["stride"], op.attrs["dilation"], (ph, pw),
                    (yt.shape[1], yt.shape[2]), acc_type)


CASES = {"CONV_2D": conv16_case, "DEPTHWISE_CONV_2D": depthwise16_case,
         "FULLY_CONNECTED": fc16_case, "TRANSPOSE_CONV": tconv16_case}
# Bias types TFLM reads for each op's 16x8 path (None: no bias).
BIASES = {"CONV_2D": ("int64", "int32", None), "DEPTHWISE_CONV_2D": ("int64", None),
          "FULLY_CONNECTED": ("int64", "int32", None), "TRANSPOSE_CONV": ("int64", "int16", None)}


def some_cases(kind: str, seed: int, n: int) -> list[tuple[Graph, Op]]:
    """n cases of `kind`, cycling through its bias types."""
    rng = np.random.default_rng(seed)
    biases = BIASES[kind]
    return [CASES[kind](rng, biases[i % len(biases)]) for i in range(n)]
