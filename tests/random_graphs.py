"""Seeded random int8 IR graphs for property tests (reference vs TFLM, planners, codegen).

A graph is a chain of windowed ops on a random NHWC input, optionally with a residual ADD, and
optionally ends in a classifier head (flatten or MEAN, then FULLY_CONNECTED; with ALL_KINDS also
SOFTMAX and DEQUANTIZE). Every choice comes from the caller's numpy Generator, so a seed names a
graph; tensors are named t0, t1, ... and ops <kind>_<index>, in creation order.

Quantisation is chosen the way a converter would: weights symmetric int8 (per channel or per
tensor), biases int32 at scale input_scale * filter_scale, pools and reshapes keep their input's
parameters. Output scales come from a rough estimate of the real value's spread (the accumulator's
standard deviation for a convolution), so outputs use the int8 range without all saturating.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinyengine.ir import Graph, Op, QuantParams, Tensor, verify
from tinyengine.ops.common import out_size

DEFAULT_KINDS = ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD",
                 "RESHAPE", "MEAN", "FULLY_CONNECTED")
# Opt-in extras: PAD and int8 -> int8 QUANTIZE in the chain, SOFTMAX and DEQUANTIZE (to float32)
# at the end.
ALL_KINDS = DEFAULT_KINDS + ("PAD", "QUANTIZE", "SOFTMAX", "DEQUANTIZE")
ACTIVATIONS = ("NONE", "NONE", "RELU", "RELU6", "RELU_N1_TO_1")

# Real range each fused activation allows.
_ACT_RANGES = {"NONE": (-math.inf, math.inf), "RELU": (0.0, math.inf), "RELU6": (0.0, 6.0),
               "RELU_N1_TO_1": (-1.0, 1.0)}

# Spread of q - zp for a value uniform over the int8 range: 256 / sqrt(12).
_UNIFORM_INT8_STD = 73.9


def _qp(scale: float | np.ndarray, zero_point: int | np.ndarray, axis: int = 0) -> QuantParams:
    return QuantParams(np.atleast_1d(np.asarray(scale, np.float32)),
                       np.atleast_1d(np.asarray(zero_point, np.int64)), axis)


@dataclass
class _Builder:
    rng: np.random.Generator
    tensors: dict[str, Tensor] = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)
    rms: dict[str, float] = field(default_factory=dict)  # estimated RMS of each real value

    # -- tensors ------------------------------------------------------------------------------

    def tensor(self, shape: tuple[int, ...], dtype: str, quant: QuantParams | None,
               data: np.ndarray | None = None) -> str:
        name = f"t{len(self.tensors)}"
        self.tensors[name] = Tensor(name, tuple(int(d) for d in shape), dtype, quant, data)
        return name

    def activation(self, shape: tuple[int, ...], spread: float, act: str) -> str:
        """An int8 output whose range covers a value of RMS `spread` after activation `act`."""
        rng = self.rng
        reach = spread * rng.uniform(2.0, 4.0)
        lo, hi = _ACT_RANGES[act]
        lo, hi = max(lo, -reach), min(hi, reach)
        scale = (hi - lo) / 255.0
        # Jitter the zero point so that some outputs clip at one end of the int8 range.
        zp = int(np.clip(round(-128 - lo / scale) + rng.integers(-16, 17), -128, 127))
        name = self.tensor(shape, "int8", _qp(scale, zp))
        self.rms[name] = min(spread, (hi - lo) / 2.0)
        return name

    def like(self, src: str, shape: tuple[int, ...]) -> str:
        """An int8 output with the same quantisation as `src` (pools, reshape)."""
        t = self.tensors[src]
        name = self.tensor(shape, "int8", t.quant)
        self.rms[name] = self.rms[src]
        return name

    def op(self, kind: str, inputs: list[str], outputs: list[str], **attrs: Any) -> None:
        self.ops.append(Op(f"{kind.lower()}_{len(self.ops)}", kind, inputs, outputs, attrs))

    def shape(self, name: str) -> tuple[int, ...]:
        return self.tensors[name].shape

    # -- parameters ---------------------------------------------------------------------------

    def weight_scales(self, channels: int, per_channel: bool) -> np.ndarray:
        base = 10.0 ** self.rng.uniform(-3.0, -1.0)
        if not per_channel:
            return np.array([base], np.float32)
        # Within a factor of 4 of each other, so one output scale suits every channel.
        return (base * 2.0 ** self.rng.uniform(-1.0, 1.0, channels)).astype(np.float32)

    def weights(self, shape: tuple[int, ...], axis: int, per_channel: bool) -> tuple[str, float]:
        """Symmetric int8 weights; returns (name, RMS of the real weights)."""
        scales = self.weight_scales(shape[axis], per_channel)
        limit = int(self.rng.integers(16, 128))
        q = self.rng.integers(-limit, limit + 1, shape).astype(np.int8)
        bshape = [1] * len(shape)
        bshape[axis] = -1
        real = q.astype(np.float64) * (scales.reshape(bshape) if per_channel else scales[0])
        zp = np.zeros(scales.size, np.int64)
        name = self.tensor(shape, "int8", QuantParams(scales, zp, axis if per_channel else 0), q)
        return name, float(np.sqrt(np.mean(real ** 2))) + 1e-9

    def bias(self, x: str, w: str, channels: int, acc_std: float) -> tuple[str, float]:
        """int32 bias at scale in_scale * w_scale, or "" (no bias) one time in five."""
        if self.rng.random() < 0.2:
            return "", 0.0
        wq = self.tensors[w].quant
        assert wq is not None
        # One scale per filter scale, as converters write it: per channel or per tensor.
        scales = (np.float64(self.tensors[x].scale) * wq.scale.astype(np.float64))
        per_channel = np.broadcast_to(scales, (channels,))
        real = self.rng.normal(0.0, acc_std * self.rng.uniform(0.0, 1.0), channels)
        q = np.clip(np.round(real / per_channel), -(1 << 24), 1 << 24).astype(np.int32)
        name = self.tensor((channels,), "int32", _qp(scales, np.zeros(scales.size, np.int64)), q)
        return name, float(np.sqrt(np.mean((q * per_channel) ** 2)))

    # -- ops ----------------------------------------------------------------------------------

    def window(self, h: int, w: int, max_k: int = 7) -> dict[str, Any]:
        """Stride, dilation, padding and kernel size that give at least a 1x1 output."""
        rng = self.rng
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        # Converters never pair dilation with stride > 1, but TFLM's kernels run it (checked
        # against the references on 600 cases), so the generator covers it too.
        dil = (int(rng.integers(1, 3)) if rng.random() < 0.3 else 1,
               int(rng.integers(1, 3)) if rng.random() < 0.3 else 1)
        padding = "SAME" if rng.random() < 0.5 else "VALID"

        def kernel(size: int, d: int) -> int:
            cap = max_k if padding == "SAME" else min(max_k, (size - 1) // d + 1)
            return int(rng.integers(1, cap + 1))

        k = (kernel(h, dil[0]), kernel(w, dil[1]))
        return {"stride": stride, "dilation": dil, "padding": padding, "kernel": k}

    def out_hw(self, h: int, w: int, win: dict[str, Any]) -> tuple[int, int]:
        (kh, kw), (sh, sw), (dh, dw) = win["kernel"], win["stride"], win["dilation"]
        return (out_size(h, kh, sh, dh, win["padding"]), out_size(w, kw, sw, dw, win["padding"]))

    def act(self) -> str:
        return str(self.rng.choice(ACTIVATIONS))

    def conv(self, x: str, pointwise: bool = False, same_shape: bool = False) -> str:
        n, h, w, c = self.shape(x)
        win = self.window(h, w, 1 if pointwise else 7)
        if pointwise or same_shape:
            win.update(stride=(1, 1), dilation=(1, 1))
        if same_shape:
            win["padding"] = "SAME"
        oc = c if same_shape else int(self.rng.integers(1, 9))
        kh, kw = win["kernel"]
        filt, w_rms = self.weights((oc, kh, kw, c), 0, bool(self.rng.random() < 0.6))
        acc_std = math.sqrt(kh * kw * c) * self.rms[x] * w_rms
        b, b_rms = self.bias(x, filt, oc, acc_std)
        act = self.act()
        y = self.activation((n, *self.out_hw(h, w, win), oc), math.hypot(acc_std, b_rms), act)
        self.op("CONV_2D", [x, filt, b], [y], stride=win["stride"], dilation=win["dilation"],
                padding=win["padding"], activation=act)
        return y

    def depthwise(self, x: str, same_shape: bool = False) -> str:
        n, h, w, c = self.shape(x)
        win = self.window(h, w)
        if same_shape:
            win.update(stride=(1, 1), dilation=(1, 1), padding="SAME")
        # A multiplier of 2 doubles the channels; stop at 16 so chains stay small.
        m = 1 if same_shape or c > 8 else int(self.rng.integers(1, 3))
        kh, kw = win["kernel"]
        filt, w_rms = self.weights((1, kh, kw, c * m), 3, bool(self.rng.random() < 0.6))
        acc_std = math.sqrt(kh * kw) * self.rms[x] * w_rms
        b, b_rms = self.bias(x, filt, c * m, acc_std)
        act = self.act()
        y = self.activation((n, *self.out_hw(h, w, win), c * m), math.hypot(acc_std, b_rms), act)
        self.op("DEPTHWISE_CONV_2D", [x, filt, b], [y], stride=win["stride"],
                dilation=win["dilation"], padding=win["padding"], depth_multiplier=m,
                activation=act)
        return y

    def pool(self, x: str, kind: str) -> str:
        n, h, w, c = self.shape(x)
        win = self.window(h, w)
        win["dilation"] = (1, 1)  # pools have no dilation
        if win["padding"] == "VALID":
            win["kernel"] = (min(win["kernel"][0], h), min(win["kernel"][1], w))
        act = self.act()
        y = self.like(x, (n, *self.out_hw(h, w, win), c))
        self.op(kind, [x], [y], stride=win["stride"], filter=win["kernel"],
                padding=win["padding"], activation=act)
        return y

    def add(self, a: str, b: str) -> str:
        act = self.act()
        y = self.activation(self.shape(a), math.hypot(self.rms[a], self.rms[b]), act)
        self.op("ADD", [a, b], [y], activation=act)
        return y

    def residual(self, x: str, kinds: tuple[str, ...]) -> str:
        """x + f(x) with a shape-preserving convolution f, or x + x without one."""
        branches = [k for k in ("CONV_2D", "DEPTHWISE_CONV_2D") if k in kinds]
        if not branches:
            return self.add(x, x)
        kind = str(self.rng.choice(branches))
        y = self.conv(x, same_shape=True) if kind == "CONV_2D" else self.depthwise(x, True)
        return self.add(x, y)

    def mean(self, x: str, keep_dims: bool) -> str:
        n, h, w, c = self.shape(x)
        shape = (n, 1, 1, c) if keep_dims else (n, c)
        # Averaging h * w values narrows the spread (partly: the values share a mean).
        y = self.activation(shape, self.rms[x] / max(1.0, math.sqrt(h * w) / 2.0), "NONE")
        self.op("MEAN", [x], [y], axes=(1, 2), keep_dims=keep_dims)
        return y

    def flatten(self, x: str) -> str:
        t = self.tensors[x]
        y = self.like(x, (t.shape[0], t.size // t.shape[0]))
        self.op("RESHAPE", [x], [y])
        return y

    def fully_connected(self, x: str) -> str:
        n, k = self.shape(x)
        units = int(self.rng.integers(1, 17))
        # Mostly per tensor, as converters emit it; TFLM also runs per-channel weights.
        wts, w_rms = self.weights((units, k), 0, bool(self.rng.random() < 0.3))
        acc_std = math.sqrt(k) * self.rms[x] * w_rms
        b, b_rms = self.bias(x, wts, units, acc_std)
        act = self.act()
        y = self.activation((n, units), math.hypot(acc_std, b_rms), act)
        self.op("FULLY_CONNECTED", [x, wts, b], [y], activation=act, keep_num_dims=False)
        return y

    def pad(self, x: str) -> str:
        n, h, w, c = self.shape(x)
        pads = [(0, 0)] + [tuple(int(p) for p in self.rng.integers(0, 3, 2)) for _ in range(2)]
        pads.append((0, 0) if self.rng.random() < 0.8 else (0, int(self.rng.integers(1, 3))))
        y = self.like(x, tuple(d + b + a for d, (b, a) in zip((n, h, w, c), pads, strict=True)))
        self.op("PAD", [x], [y], paddings=pads)
        return y

    def requantize(self, x: str) -> str:
        y = self.activation(self.shape(x), self.rms[x], "NONE")
        self.op("QUANTIZE", [x], [y])
        return y

    def softmax(self, x: str) -> str:
        y = self.tensor(self.shape(x), "int8", _qp(1.0 / 256.0, -128))
        self.rms[y] = 0.5
        self.op("SOFTMAX", [x], [y], beta=float(self.rng.choice([1.0, 0.5, 2.0])))
        return y

    def dequantize(self, x: str) -> str:
        y = self.tensor(self.shape(x), "float32", None)
        self.op("DEQUANTIZE", [x], [y])
        return y


# One chain step per kind: (builder, current tensor, allowed kinds) -> new current tensor.
_STEPS: dict[str, Callable[[_Builder, str, tuple[str, ...]], str]] = {
    "CONV_2D": lambda b, x, _: b.conv(x, pointwise=bool(b.rng.random() < 0.25)),
    "DEPTHWISE_CONV_2D": lambda b, x, _: b.depthwise(x),
    "AVERAGE_POOL_2D": lambda b, x, _: b.pool(x, "AVERAGE_POOL_2D"),
    "MAX_POOL_2D": lambda b, x, _: b.pool(x, "MAX_POOL_2D"),
    "ADD": lambda b, x, kinds: b.residual(x, kinds),
    "PAD": lambda b, x, _: b.pad(x),
    "QUANTIZE": lambda b, x, _: b.requantize(x),
}


def _head(b: _Builder, x: str, kinds: tuple[str, ...]) -> str:
    """Optionally end the chain: MEAN, flatten, or either followed by FULLY_CONNECTED."""
    heads = ["none"]
    if "MEAN" in kinds:
        heads.append("mean")
    if "RESHAPE" in kinds:
        heads.append("flatten")
    if "FULLY_CONNECTED" in kinds:
        heads += [h + "_fc" for h in heads[1:]]
    head = str(b.rng.choice(heads))
    if head.startswith("mean"):
        x = b.mean(x, keep_dims=head == "mean" and bool(b.rng.random() < 0.5))
    elif head.startswith("flatten"):
        x = b.flatten(x)
    if head.endswith("_fc"):
        x = b.fully_connected(x)
    return x


def random_graph(rng: np.random.Generator, kinds: tuple[str, ...] = DEFAULT_KINDS,
                 max_ops: int = 4) -> Graph:
    """A random int8 graph using only op kinds from `kinds`; it always passes verify()."""
    b = _Builder(rng)
    spatial = [k for k in _STEPS if k in kinds]
    if spatial:
        shape: tuple[int, ...] = (1, int(rng.integers(1, 13)), int(rng.integers(1, 13)),
                                  int(rng.integers(1, 9)))
    elif "FULLY_CONNECTED" in kinds:
        shape = (1, int(rng.integers(1, 65)))  # a classifier alone takes a flat input
    else:
        raise ValueError(f"kinds {kinds} cannot make a graph: add a spatial op or FULLY_CONNECTED")
    scale = 10.0 ** rng.uniform(-2.5, -0.5)
    zp = int(rng.integers(-128, 128))
    x = b.tensor(shape, "int8", _qp(scale, zp))
    b.rms[x] = scale * math.hypot(_UNIFORM_INT8_STD, zp + 0.5)
    y = x
    if spatial:
        for _ in range(int(rng.integers(1, max_ops + 1))):
            y = _STEPS[str(rng.choice(spatial))](b, y, kinds)
        y = _head(b, y, kinds)
    else:
        y = b.fully_connected(y)
    # Long rows (>= 512 values near the maximum) overflow the sum of exponentials: TFLM aborts.
    if "SOFTMAX" in kinds and rng.random() < 0.5 and b.shape(y)[-1] <= 64:
        y = b.softmax(y)
    if "DEQUANTIZE" in kinds and rng.random() < 0.3:
        y = b.dequantize(y)
    graph = Graph(b.tensors, b.ops, [x], [y], name="random")
    verify(graph)
    return graph


def random_input(graph: Graph, rng: np.random.Generator) -> list[np.ndarray]:
    """Uniform int8 values for each graph input."""
    return [rng.integers(-128, 128, graph.tensor(n).shape).astype(np.int8) for n in graph.inputs]
