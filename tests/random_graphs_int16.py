"""Seeded random int16 IR graphs (TFLite's 16x8 mode: symmetric int16 activations, int8
weights, int64 biases) for property tests of the int16 kernels, the planner, the code generator
and the TFLite writer (tests/test_random_graphs_int16.py). Built on random_graphs_v2.py's
builder: its chain of steps, splits and joins, unpack/pack, rank detours.

Which ops a graph may hold is decided when it is built: every kind of CANDIDATE_KINDS whose op
definition lists "int16" in its `dtypes` at that moment (`int16_kinds()`), so an op family joins
the graphs as soon as its int16 path exists. A step whose op the engine's check() refuses (a
scale outside a kernel's range, say) is rolled back and another one drawn, a bounded number of
seeded times, then a data-movement step that always passes; the coverage test in
test_random_graphs_int16.py makes sure that each included kind still occurs.

Quantisation follows the 16x8 converter: every int16 activation symmetric (zero point 0) at a
scale that covers an estimate of its real spread, data movement keeps its input's parameters,
LOGISTIC / TANH / SOFTMAX outputs 2^-15; a join whose inputs differ in parameters gets them from
its producers where they requantise, else through an int16 -> int16 QUANTIZE. QUANTIZE's
int8 <-> int16 and int16 <-> int32 pairs appear as detours through int8 or int32 (zero point 0,
a finer scale). TRANSPOSE_CONV takes int8 weights and an int64 bias, as CONV_2D does.

Float I/O: where QUANTIZE and DEQUANTIZE take float32, a graph may read a float32 input through a
QUANTIZE float32 -> int16 and give its main output through a DEQUANTIZE int16 -> float32 (always
when DEQUANTIZE is focused: no other step emits it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinyengine.errors import UnsupportedError
from tinyengine.ir import Graph, QuantParams, Tensor, verify
from tinyengine.ops import get_op

from .random_graphs import _ACT_RANGES, _qp
from .random_graphs_v2 import _MixedBuilder

MOVEMENT_KINDS = ("CONCATENATION", "PAD", "STRIDED_SLICE", "SLICE", "RESHAPE", "TRANSPOSE",
                  "SQUEEZE", "EXPAND_DIMS", "SPLIT", "SPLIT_V", "PACK", "UNPACK")
UNARY_KINDS = ("RELU", "RELU6", "LEAKY_RELU", "LOGISTIC", "TANH", "HARD_SWISH")
BINARY_KINDS = ("ADD", "SUB", "MUL")
OTHER_KINDS = BINARY_KINDS + ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED",
                              "TRANSPOSE_CONV") + UNARY_KINDS + \
    ("SOFTMAX", "MEAN", "SUM", "AVERAGE_POOL_2D", "MAX_POOL_2D", "QUANTIZE", "DEQUANTIZE")
CANDIDATE_KINDS = MOVEMENT_KINDS + OTHER_KINDS
INT16_MAX = 32767
_MAX_ELEMENTS = 1024  # steps that would grow a tensor past this are followed by a shrink
_TRIES = 4  # seeded attempts per step before the always-valid fallback


def int16_kinds() -> tuple[str, ...]:
    """The candidate kinds whose op definition takes int16 activations now."""
    out = []
    for kind in CANDIDATE_KINDS:
        try:
            if "int16" in get_op(kind).dtypes:
                out.append(kind)
        except UnsupportedError:  # not registered at all
            continue
    return tuple(out)


def float_io(kinds: tuple[str, ...]) -> tuple[bool, bool]:
    """(a float32 input through QUANTIZE may be drawn, a float32 output through DEQUANTIZE may)."""
    def takes_float(kind: str) -> bool:
        return kind in kinds and "float32" in get_op(kind).dtypes
    return takes_float("QUANTIZE"), takes_float("DEQUANTIZE")


class _Retry(Exception):
    """An op of the current step was refused by its check(): roll the step back."""


@dataclass
class Int16Builder(_MixedBuilder):
    kinds: tuple[str, ...] = ()

    def has(self, *kinds: str) -> bool:
        return all(k in self.kinds for k in kinds)

    def available(self, kinds: tuple[str, ...]) -> list[str]:
        return [k for k in kinds if k in self.kinds]

    # -- tensors and transactions ---------------------------------------------------------------

    def activation(self, shape: tuple[int, ...], spread: float, act: str) -> str:
        """A symmetric int16 tensor whose range covers a value of RMS `spread` after `act`."""
        spread = min(max(spread, 1e-4), 50.0)
        reach = spread * self.rng.uniform(2.0, 4.0)
        lo, hi = _ACT_RANGES[act]
        lo, hi = max(lo, -reach), min(hi, reach)
        name = self.tensor(shape, "int16", _qp(max(abs(lo), abs(hi)) / INT16_MAX, 0))
        self.rms[name] = min(spread, (hi - lo) / 2.0)
        return name

    def like(self, src: str, shape: tuple[int, ...]) -> str:
        t = self.tensors[src]
        name = self.tensor(shape, t.dtype, t.quant)
        self.rms[name] = self.rms[src]
        return name

    def bias(self, x: str, w: str, channels: int, acc_std: float) -> tuple[str, float]:
        """An int64 bias at scale in_scale * w_scale (TFLite's 16x8 bias), or "" one in five."""
        if self.rng.random() < 0.2:
            return "", 0.0
        wq = self.tensors[w].quant
        assert wq is not None
        scales = np.float64(self.tensors[x].scale) * wq.scale.astype(np.float64)
        per_channel = np.broadcast_to(scales, (channels,))
        real = self.rng.normal(0.0, acc_std * self.rng.uniform(0.0, 1.0), channels)
        q = np.clip(np.round(real / per_channel), -(1 << 40), 1 << 40).astype(np.int64)
        name = self.tensor((channels,), "int64", _qp(scales, np.zeros(scales.size, np.int64)), q)
        return name, float(np.sqrt(np.mean((q * per_channel) ** 2)))

    def const16(self, shape: tuple[int, ...], quant: QuantParams) -> str:
        """A constant int16 operand (symmetric, per tensor)."""
        q = self.rng.integers(-32768, 32768, shape).astype(np.int16)
        name = self.tensor(shape, "int16", quant, q)
        real = q.astype(np.float64) * float(quant.scale[0])
        self.rms[name] = float(np.sqrt(np.mean(real ** 2))) + 1e-9
        return name

    def operand_quant(self, x: str) -> QuantParams:
        return _qp(self.tensors[x].scale * 2.0 ** self.rng.uniform(-2.0, 2.0), 0)

    def op(self, kind: str, inputs: list[str], outputs: list[str], **attrs: Any) -> None:
        """Append the op; one whose activation types the op does not take (ir.verify's rule),
        or whose configuration its check() refuses, rolls the step back."""
        super().op(kind, inputs, outputs, **attrs)
        dtypes = get_op(kind).dtypes
        if any(not self.tensors[n].is_const and self.tensors[n].dtype not in dtypes
               for n in inputs + outputs if n) or not self.fits(self.ops[-1]):
            raise _Retry(kind)

    def snapshot(self) -> tuple[int, dict[str, Tensor], dict[str, float]]:
        return len(self.ops), dict(self.tensors), dict(self.rms)

    def restore(self, state: tuple[int, dict[str, Tensor], dict[str, float]]) -> None:
        n, tensors, rms = state
        del self.ops[n:]
        self.tensors, self.rms = tensors, rms

    def attempt(self, step: Callable[[Int16Builder, str], str], x: str,
                fallback: Callable[[Int16Builder, str], str] | None = None) -> str:
        """`step` on x, rolled back and redrawn (the rng moves on) while refused; then the
        fallback, a step that always passes."""
        for _ in range(_TRIES):
            state = self.snapshot()
            try:
                return step(self, x)
            except _Retry:
                self.restore(state)
        return (fallback or Int16Builder.transpose)(self, x)

    def retarget(self, y: str, like: str) -> str:
        """`y` under the parameters of `like`: set on its producer where that requantises and
        still passes its check, else through an int16 -> int16 QUANTIZE."""
        want = self.tensors[like].quant
        t = self.tensors[y]
        if t.quant is not None and want is not None and \
                np.array_equal(t.quant.scale, want.scale):
            return y
        producer = next((op for op in self.ops if y in op.outputs), None)
        if producer is not None and producer.kind not in MOVEMENT_KINDS + ("RELU6",) \
                and not any(y in op.inputs for op in self.ops):
            self.tensors[y] = Tensor(t.name, t.shape, t.dtype, want)
            if self.fits(producer):
                return y
            self.tensors[y] = t
        z = self.tensor(t.shape, "int16", want)
        self.rms[z] = self.rms[y]
        self.op("QUANTIZE", [y], [z])
        return z

    # -- element-wise ---------------------------------------------------------------------------

    def same_shape(self, x: str) -> str:
        """A RESHAPE to x's own shape: the step that always passes where one must keep a shape."""
        y = self.like(x, self.shape(x))
        self.op("RESHAPE", [x], [y])
        return y

    def unary(self, x: str, kind: str = "") -> str:
        choices = self.available(UNARY_KINDS)
        if not kind and not choices:
            return self.same_shape(x)
        kind = kind or str(self.rng.choice(choices))
        shape, rms = self.shape(x), self.rms[x]
        attrs: dict[str, Any] = {}
        if kind == "RELU6":  # TFLM's RELU6 clamps without requantising
            y = self.like(x, shape)
        elif kind in ("LOGISTIC", "TANH"):
            y = self.tensor(shape, "int16", _qp(1.0 / 32768.0, 0))
            self.rms[y] = 0.5
        else:
            y = self.activation(shape, rms, "RELU" if kind == "RELU" else "NONE")
            if kind == "LEAKY_RELU":
                attrs["alpha"] = float(np.float32(self.rng.choice([0.01, 0.1, 0.2, 0.5, -0.25,
                                                                   1.5])))
        self.op(kind, [x], [y], **attrs)
        return y

    def binary(self, a: str, b: str, kind: str) -> str:
        shape = tuple(int(d) for d in np.broadcast_shapes(self.shape(a), self.shape(b)))
        ra, rb = self.rms[a], self.rms[b]
        act = str(self.rng.choice(["NONE", "NONE", "RELU", "RELU6", "RELU_N1_TO_1"]))
        y = self.activation(shape, ra * rb if kind == "MUL" else math.hypot(ra, rb), act)
        self.op(kind, [a, b], [y], activation=act)
        return y

    def binary_const(self, x: str, kind: str = "") -> str:
        choices = self.available(BINARY_KINDS)
        if not kind and not choices:
            return self.unary(x)
        kind = kind or str(self.rng.choice(choices))
        c = self.const16(self.broadcast_shape(self.shape(x)), self.operand_quant(x))
        return self.binary(x, c, kind) if self.rng.random() < 0.6 else self.binary(c, x, kind)

    def residual16(self, x: str, kind: str = "") -> str:
        """x (op) f(x), f shape-preserving (or the identity: x (op) x)."""
        rng = self.rng
        kind = kind or str(rng.choice(self.available(BINARY_KINDS)))
        fs = ["unary", "binary_const", "identity"] + \
            ["conv"] * self.has("CONV_2D") + ["depthwise"] * self.has("DEPTHWISE_CONV_2D")
        f = str(rng.choice(fs))
        y = {"conv": lambda: self.conv(x, same_shape=True),
             "depthwise": lambda: self.depthwise(x, same_shape=True),
             "unary": lambda: self.unary(x),
             "binary_const": lambda: self.binary_const(x),
             "identity": lambda: x}[f]()
        return self.binary(x, y, kind) if rng.random() < 0.5 else self.binary(y, x, kind)

    # -- branches -------------------------------------------------------------------------------

    def branch_step(self, p: str, axis: int, keep_shape: bool) -> str:
        """One op on a split piece that keeps every dim but maybe the split axis."""
        choices = ["unary", "binary_const", "movement"]
        choices += ["conv"] * self.has("CONV_2D") + ["depthwise"] * self.has("DEPTHWISE_CONV_2D")
        if axis == 3 and not keep_shape and self.has("CONV_2D"):
            choices.append("pointwise")
        f = str(self.rng.choice(choices))
        if f == "unary":
            return self.unary(p)
        if f == "binary_const":
            return self.binary_const(p)
        if f == "movement":  # a reversal along some axis keeps the shape
            n, h, w, c = self.shape(p)
            k = int(self.rng.integers(1, 4))
            y = self.like(p, (n, h, w, c))
            self.op("STRIDED_SLICE", [p], [y], begin=(0, 0, 0, 0), end=(1, h, w, c),
                    strides=tuple(-1 if i == k else 1 for i in range(4)),
                    begin_mask=1 << k, end_mask=1 << k, shrink_axis_mask=0)
            return y
        if f == "depthwise":
            return self.depthwise(p, same_shape=True)
        return self.conv(p, same_shape=True) if f == "conv" else self.pointwise(p)

    def widen_channels(self, x: str) -> str:
        """PAD the channels to an even count of at least 2 (split_concat and unpack_pack take a
        1x1 convolution for this where they may)."""
        n, h, w, c = self.shape(x)
        y = self.like(x, (n, h, w, c + (1 if c % 2 else 2)))
        self.op("PAD", [x], [y], paddings=[(0, 0), (0, 0), (0, 0), (0, 1 if c % 2 else 2)])
        return y

    def split_concat16(self, x: str, kind: str = "") -> str:
        shape = self.shape(x)
        if all(d % 2 for d in shape[1:]):  # no axis splits evenly: make the channels one
            x = self.widen_channels(x)
        return self.split_concat(x, kind)

    def unpack_pack16(self, x: str) -> str:
        if not any(2 <= d <= 4 for d in self.shape(x)[1:]):
            n, h, w, c = self.shape(x)
            if c > 4:  # the first few channels
                y = self.like(x, (n, h, w, int(self.rng.integers(2, 5))))
                self.op("SLICE", [x], [y], begin=(0, 0, 0, 0))
                x = y
            else:
                x = self.widen_channels(x)
        return self.unpack_pack(x)

    # -- other steps ------------------------------------------------------------------------------

    def reshape(self, x: str) -> str:
        """RESHAPE of NHWC to another 4-D shape of the same size: rows to columns or the like."""
        n, h, w, c = self.shape(x)
        shapes = [(n, h * w, 1, c), (n, 1, h * w, c), (n, w, h, c), (n, h, w * c, 1)]
        y = self.like(x, shapes[int(self.rng.integers(0, len(shapes)))])
        self.op("RESHAPE", [x], [y])
        return y

    def quantize_detour(self, x: str) -> str:
        """int16 -> QUANTIZE -> int8 (affine, maybe through an int8 RELU) -> QUANTIZE -> int16."""
        rng = self.rng
        reach = self.rms[x] * rng.uniform(2.0, 4.0)
        zp = int(rng.integers(-20, 21))
        q8 = self.tensor(self.shape(x), "int8", _qp(2.0 * reach / 255.0, zp))
        self.rms[q8] = self.rms[x]
        self.op("QUANTIZE", [x], [q8])
        if rng.random() < 0.4:
            r = self.tensor(self.shape(q8), "int8", self.tensors[q8].quant)
            self.rms[r] = self.rms[q8]
            self.op("RELU", [q8], [r])  # RELU's int8 path: always there
            q8 = r
        y = self.activation(self.shape(q8), self.rms[q8], "NONE")
        self.op("QUANTIZE", [q8], [y])
        return y

    def quantize32_detour(self, x: str) -> str:
        """int16 -> QUANTIZE -> int32 (zero point 0, up to 2^12 times finer) -> QUANTIZE ->
        int16: TFLM's Requantize both ways, with int32 values far beyond int16's."""
        q32 = self.tensor(self.shape(x), "int32",
                          _qp(self.tensors[x].scale * 2.0 ** -self.rng.uniform(0.0, 12.0), 0))
        self.rms[q32] = self.rms[x]
        self.op("QUANTIZE", [x], [q32])
        y = self.activation(self.shape(q32), self.rms[q32], "NONE")
        self.op("QUANTIZE", [q32], [y])
        return y

    def reduce16(self, x: str, kind: str = "", keep_dims: bool = True, first: int = 1) -> str:
        """MEAN or SUM (whichever runs on int16; `kind` forces one) over random axes."""
        kind = kind or str(self.rng.choice(self.available(("MEAN", "SUM"))))
        return self.reduce(x, kind, self.random_axes(len(self.shape(x)), first), keep_dims)

    def softmax16(self, x: str) -> str:
        y = self.tensor(self.shape(x), "int16", _qp(1.0 / 32768.0, 0))
        self.rms[y] = 0.5
        self.op("SOFTMAX", [x], [y], beta=float(self.rng.choice([1.0, 0.5, 2.0])))
        return y

    def fc_step(self, x: str) -> str:
        """Flatten, FULLY_CONNECTED, and back to NHWC (1, 1, 1, units)."""
        y = self.fully_connected(self.flatten(x))
        z = self.like(y, (1, 1, 1, self.shape(y)[-1]))
        self.op("RESHAPE", [y], [z])
        return z

    def pool16(self, x: str, kind: str = "") -> str:
        kind = kind or str(self.rng.choice(self.available(("AVERAGE_POOL_2D", "MAX_POOL_2D"))))
        return self.pool(x, kind)

    def stem16(self, x: str) -> str:
        """A wide full-resolution convolution, maybe an element-wise op with a per-channel
        constant, then a stride-2 reduction (a pool, or PAD and a VALID convolution): the
        memory-heavy opening that patch-based inference cuts into patches."""
        rng = self.rng
        y = self.pointwise(x, 8) if rng.random() < 0.5 else self.conv(x, same_shape=True)
        if rng.random() < 0.7 and self.available(BINARY_KINDS):
            kind = str(rng.choice(self.available(BINARY_KINDS)))
            const = self.const16((self.shape(y)[-1],), self.operand_quant(y))
            y = self.binary(y, const, kind)
        if rng.random() < 0.5:
            return self.shrink(y)
        p = self.pad(y)
        n, h, w, c = self.shape(p)
        k = (min(3, h), min(3, w))
        filt, w_rms = self.weights((c, *k, c), 0, True)
        acc_std = math.sqrt(k[0] * k[1] * c) * self.rms[p] * w_rms
        act = self.act()
        y = self.activation((n, (h - k[0]) // 2 + 1, (w - k[1]) // 2 + 1, c), acc_std, act)
        self.op("CONV_2D", [p, filt, ""], [y], stride=(2, 2), dilation=(1, 1),
                padding="VALID", activation=act)
        return y

    def shrink(self, x: str) -> str:
        """Halve the rows and columns: a max pool where it runs on int16 (and passes), else
        shrink_slice."""
        if self.has("MAX_POOL_2D"):
            return self.attempt(_MixedBuilder.shrink, x, fallback=Int16Builder.shrink_slice)
        return self.shrink_slice(x)

    def shrink_slice(self, x: str) -> str:
        """Every other row and column: a stride-2 STRIDED_SLICE, which always passes."""
        n, h, w, c = self.shape(x)
        y = self.like(x, (n, (h + 1) // 2, (w + 1) // 2, c))
        self.op("STRIDED_SLICE", [x], [y], begin=(0, 0, 0, 0), end=(n, h, w, c),
                strides=(1, 2, 2, 1), begin_mask=0, end_mask=0, shrink_axis_mask=0)
        return y


Step = Callable[[Int16Builder, str], str]
# name -> (kinds the step needs, all of them; the step).
_STEPS: dict[str, tuple[tuple[str, ...], Step]] = {
    "stem": (("CONV_2D",), lambda b, x: b.stem16(x)),
    "transpose": (("TRANSPOSE",), lambda b, x: b.transpose(x)),
    "rank5": (("EXPAND_DIMS", "TRANSPOSE", "SQUEEZE"), lambda b, x: b.through_rank5(x)),
    "rank3": (("SQUEEZE", "STRIDED_SLICE", "EXPAND_DIMS"), lambda b, x: b.through_rank3(x)),
    "slice": (("SLICE",), lambda b, x: b.slice(x)),
    "strided_slice": (("STRIDED_SLICE",), lambda b, x: b.strided_slice(x)),
    "pad": (("PAD",), lambda b, x: b.pad(x)),
    "reshape": (("RESHAPE",), lambda b, x: b.reshape(x)),
    "split_concat": (("SPLIT", "SPLIT_V", "CONCATENATION"), lambda b, x: b.split_concat16(x)),
    "fan_concat": (("CONCATENATION",), lambda b, x: b.fan_concat(x)),
    "unpack_pack": (("UNPACK", "PACK"), lambda b, x: b.unpack_pack16(x)),
    "unary": ((), lambda b, x: b.unary(x)),
    "binary_const": ((), lambda b, x: b.binary_const(x)),
    "residual": (("ADD",), lambda b, x: b.residual16(x)),
    "conv": (("CONV_2D",), lambda b, x: b.conv(x, pointwise=bool(b.rng.random() < 0.25))),
    "depthwise": (("DEPTHWISE_CONV_2D",), lambda b, x: b.depthwise(x)),
    "pool": (("MAX_POOL_2D",), lambda b, x: b.pool16(x)),
    "avg_pool": (("AVERAGE_POOL_2D",), lambda b, x: b.pool16(x, "AVERAGE_POOL_2D")),
    "mean": (("MEAN",), lambda b, x: b.reduce16(x, "MEAN")),
    "sum": (("SUM",), lambda b, x: b.reduce16(x, "SUM")),
    "transpose_conv": (("TRANSPOSE_CONV",), lambda b, x: b.transpose_conv(x)),
    "quantize": (("QUANTIZE",), lambda b, x: b.quantize_detour(x)),
    "quantize32": (("QUANTIZE",), lambda b, x: b.quantize32_detour(x)),
    "softmax": (("SOFTMAX",), lambda b, x: b.softmax16(x)),
    "fc": (("FULLY_CONNECTED", "RESHAPE"), lambda b, x: b.fc_step(x)),
}


# Joins and splits are drawn more often than the rest (their views are rarer: they need an outer
# axis, aligned slices and inputs that die at the join), and so is TRANSPOSE_CONV (its 16x8
# kernel is the only one that scatters, and a fifth of its draws have no bias).
_WEIGHT = {"split_concat": 3.0, "fan_concat": 3.0, "unpack_pack": 2.0, "transpose_conv": 2.0}
# Steps that can run patch by patch (windowed or element-wise): the first step is one of them
# half of the time, so patch-based inference gets a stage to cut.
_PATCHABLE = ("stem", "stem", "unary", "binary_const", "pad", "conv", "depthwise", "residual")


def _focus_step(kind: str) -> Step:
    """A step sure to emit an op of `kind` (when its check accepts the draw)."""
    def step(b: Int16Builder, x: str) -> str:
        pick = int(b.rng.integers(0, 2))
        if kind in BINARY_KINDS:
            return b.binary_const(x, kind) if pick else b.residual16(x, kind)
        if kind in UNARY_KINDS:
            return b.unary(x, kind)
        if kind == "CONCATENATION":
            return b.split_concat16(x) if pick else b.fan_concat(x)
        if kind in ("SPLIT", "SPLIT_V"):
            return b.split_concat16(x, kind)
        if kind in ("PACK", "UNPACK"):
            return b.unpack_pack16(x)
        if kind in ("SQUEEZE", "EXPAND_DIMS"):
            return b.through_rank5(x) if pick else b.through_rank3(x)
        if kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            return b.pool16(x, kind)
        if kind == "QUANTIZE":
            return b.quantize_detour(x) if pick else b.quantize32_detour(x)
        name = {"TRANSPOSE": "transpose", "SLICE": "slice", "STRIDED_SLICE": "strided_slice",
                "PAD": "pad", "RESHAPE": "reshape", "CONV_2D": "conv",
                "DEPTHWISE_CONV_2D": "depthwise", "FULLY_CONNECTED": "fc", "MEAN": "mean",
                "SUM": "sum", "TRANSPOSE_CONV": "transpose_conv", "SOFTMAX": "softmax"}[kind]
        return _STEPS[name][1](b, x)
    return step


def _head(b: Int16Builder, x: str) -> str:
    """Optionally end below rank 4: a MEAN or SUM, a SQUEEZE, a shrinking STRIDED_SLICE, or a
    classifier (flatten, FULLY_CONNECTED, maybe SOFTMAX)."""
    rng = b.rng
    heads = ["none", "none", "squeeze", "shrink"] + \
        ["reduce"] * bool(b.available(("MEAN", "SUM"))) + \
        ["classifier"] * b.has("FULLY_CONNECTED")
    head = str(rng.choice(heads))
    shape = b.shape(x)
    if head == "reduce":
        return b.reduce16(x, keep_dims=False, first=0)
    if head == "squeeze":
        if 1 not in shape:
            return x
        y = b.like(x, tuple(d for d in shape if d != 1) or (1,))
        b.op("SQUEEZE", [x], [y], axes=())
        return y
    if head == "shrink":
        mask = int(rng.integers(1, 15))  # not every axis: TFLite's scalar is the IR's (1,)
        begin = tuple(int(rng.integers(-d, d)) if mask >> k & 1 else 0
                      for k, d in enumerate(shape))
        y = b.like(x, tuple(d for k, d in enumerate(shape) if not mask >> k & 1) or (1,))
        b.op("STRIDED_SLICE", [x], [y], begin=begin, end=shape, strides=(1, 1, 1, 1),
             begin_mask=0, end_mask=0, shrink_axis_mask=mask)
        return y
    if head == "classifier":
        x = b.fully_connected(b.flatten(x))
        if b.has("SOFTMAX") and rng.random() < 0.5:
            x = b.softmax16(x)
    return x


def random_graph_int16(rng: np.random.Generator, max_ops: int = 5,
                       focus: tuple[str, ...] = (), kinds: tuple[str, ...] | None = None
                       ) -> Graph:
    """A random int16 graph: 1 to `max_ops` random steps on a random NHWC input, plus a step
    sure to emit each kind in `focus` (where its check accepts one of a few draws), then maybe a
    lower-rank head and a second output from inside the graph. Only kinds in `kinds` (default:
    int16_kinds() now) are used. The input is float32 (QUANTIZE'd to int16) one time in four,
    the main output float32 (DEQUANTIZE'd) one in four and whenever DEQUANTIZE is focused,
    where those ops take float32. It always passes verify()."""
    kinds = int16_kinds() if kinds is None else kinds
    b = Int16Builder(rng, kinds=kinds)
    shape = (1, int(rng.integers(2, 17)), int(rng.integers(2, 17)),
             int(rng.choice([1, 2, 3, 4, 4, 6, 8])))
    scale = 10.0 ** rng.uniform(-4.5, -2.5)
    may_float_in, may_float_out = float_io(kinds)
    float_in = may_float_in and bool(rng.random() < 0.25)
    float_out = may_float_out and ("DEQUANTIZE" in focus or bool(rng.random() < 0.25))
    focus = tuple(k for k in focus if k != "DEQUANTIZE")
    x = b.tensor(shape, "float32", None) if float_in else ""
    y = b.tensor(shape, "int16", _qp(scale, 0))
    b.rms[y] = scale * 65536.0 / math.sqrt(12.0)  # uniform over the int16 range
    if float_in:  # random_inputs() draws over the range this QUANTIZE represents
        b.op("QUANTIZE", [x], [y])
    x = x or y
    usable = [name for name, (need, _) in _STEPS.items() if b.has(*need)
              and (name != "unary" or b.available(UNARY_KINDS))
              and (name != "binary_const" or b.available(BINARY_KINDS))]
    weights = np.array([_WEIGHT.get(name, 1.0) for name in usable])
    patchable = [name for name in _PATCHABLE if name in usable]
    names = [str(rng.choice(patchable)) if i == 0 and patchable and rng.random() < 0.5 else
             str(rng.choice(usable, p=weights / weights.sum()))
             for i in range(int(rng.integers(1, max_ops + 1)))]
    steps: list[Step] = [_STEPS[name][1] for name in names]
    for kind in focus:
        steps.insert(int(rng.integers(0, len(steps) + 1)), _focus_step(kind))
    for step in steps:
        y = b.attempt(step, y)
        while b.tensors[y].size > _MAX_ELEMENTS:
            y = b.shrink(y)
    y = b.attempt(_head, y, fallback=lambda b, x: x)
    if float_out:
        z = b.tensor(b.shape(y), "float32", None)
        b.op("DEQUANTIZE", [y], [z])
        y = z
    outputs = [y]
    inner = [n for op in b.ops for n in op.outputs if n != y and b.tensors[n].dtype == "int16"]
    if inner and rng.random() < 0.25:
        outputs.append(str(rng.choice(inner)))
    graph = Graph(b.tensors, b.ops, [x], outputs, name="random_int16")
    verify(graph)
    return graph
