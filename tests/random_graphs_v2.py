"""Seeded random int8 IR graphs that mix the engine's newer ops (element-wise binaries with
broadcasting, activations, data movement, joins and splits, reductions, resizes, TRANSPOSE_CONV,
BATCH_MATMUL) with the original ones, for property tests of the planner, the code generator and
the TFLM writer (tests/test_random_graphs_new_ops.py). Built on random_graphs.py's builder.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from tinyengine.errors import UnsupportedError
from tinyengine.ir import Graph, Op, QuantParams, Tensor, verify
from tinyengine.ops import get_op
from tinyengine.ops.strided_slice import axis_walks

from .random_graphs import _UNIFORM_INT8_STD, _Builder, _qp

# -- random_graph_v2: the engine's newer int8 ops mixed with the old ones -----------------------
#
# A chain of steps on a 4-D NHWC tensor (batch 1) as above, but a step may be a construct of
# several ops: a split whose pieces run their own ops and rejoin in a CONCATENATION (along the
# split axis or, for equal pieces, another one), an UNPACK whose slices are PACKed back (maybe
# along another axis), a residual binary op, a squeeze-and-excite gate (a reduction broadcast
# back over its input), a detour through rank 3 or rank 5 and back. Quantisation follows each
# op's quant_rule as a converter would: byte movers share their input's parameters, LOGISTIC and
# TANH get their fixed outputs, MAXIMUM / MINIMUM / CONCATENATION / PACK operands share the
# output's parameters (a requantising producer is given them, else an int8 -> int8 QUANTIZE is
# inserted, as converters do). The few choices an op's check() may still refuse (a resize that
# would read outside its input, a HARD_SWISH scale ratio) are checked as they are made, with a
# bounded number of seeded tries and a fallback that always passes.
NEW_KINDS = ("SUB", "MUL", "SQUARED_DIFFERENCE", "MAXIMUM", "MINIMUM", "RELU", "RELU6",
             "LEAKY_RELU", "PRELU", "HARD_SWISH", "LOGISTIC", "TANH", "TRANSPOSE", "SLICE",
             "STRIDED_SLICE", "SQUEEZE", "EXPAND_DIMS", "SPLIT", "SPLIT_V", "CONCATENATION",
             "PACK", "UNPACK", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH", "MEAN", "SUM",
             "RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR", "TRANSPOSE_CONV", "BATCH_MATMUL",
             "PAD")

_UNARY = ("RELU", "RELU6", "LEAKY_RELU", "PRELU", "HARD_SWISH", "LOGISTIC", "TANH")
_BINARY = ("ADD", "SUB", "MUL", "SQUARED_DIFFERENCE", "MAXIMUM", "MINIMUM")
# Ops whose output has parameters of its own: a converter gives it what its consumer needs.
_REQUANTISING = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "SUB",
                           "MUL", "SQUARED_DIFFERENCE", "RELU", "LEAKY_RELU", "HARD_SWISH",
                           "PRELU", "MEAN", "SUM", "BATCH_MATMUL", "TRANSPOSE_CONV",
                           "QUANTIZE"})
_MAX_ELEMENTS = 1024  # steps that would grow a tensor past this take a smaller variant


def _same_quant(a: QuantParams | None, b: QuantParams | None) -> bool:
    return a is not None and b is not None and np.array_equal(a.scale, b.scale) and \
        np.array_equal(a.zero_point, b.zero_point)


class _MixedBuilder(_Builder):
    def activation(self, shape: tuple[int, ...], spread: float, act: str) -> str:
        # Products and sums of products drift far from 1 over a long chain; keep each real
        # range where every op's scale limits (LOGISTIC's input scale <= 16, say) hold.
        return super().activation(shape, min(max(spread, 1e-3), 50.0), act)

    def fits(self, op: Op) -> bool:
        """True when the op's check() accepts it among the tensors built so far."""
        try:
            get_op(op.kind).check(Graph(self.tensors, self.ops, [], []), op)
        except UnsupportedError:
            return False
        return True

    def undo(self, n_tensors: int) -> None:
        """Drop the last op and the tensors created since there were `n_tensors`."""
        self.ops.pop()
        for name in list(self.tensors)[n_tensors:]:
            del self.tensors[name]
            self.rms.pop(name, None)

    def const_int8(self, shape: tuple[int, ...], quant: QuantParams) -> str:
        """A constant int8 operand (per tensor, as converters quantise constant operands)."""
        q = self.rng.integers(-128, 128, shape).astype(np.int8)
        name = self.tensor(shape, "int8", quant, q)
        spread = (q.astype(np.float64) - float(quant.zero_point[0])) * float(quant.scale[0])
        self.rms[name] = float(np.sqrt(np.mean(spread ** 2))) + 1e-9
        return name

    def operand_quant(self, x: str) -> QuantParams:
        """Per-tensor parameters near those of `x` (a constant operand of an op on x)."""
        scale = self.tensors[x].scale * 2.0 ** self.rng.uniform(-2.0, 2.0)
        return _qp(scale, int(self.rng.integers(-40, 41)))

    def broadcast_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """A shape that broadcasts into `shape`: some dims 1, some leading dims dropped."""
        rng = self.rng
        dims = [d if rng.random() < 0.5 else 1 for d in shape]
        dims[-1] = shape[-1] if rng.random() < 0.6 else dims[-1]  # per channel, mostly
        drop = int(rng.integers(0, len(dims)))
        return tuple(dims[drop:])

    def retarget(self, y: str, like: str) -> str:
        """`y` under the parameters of `like`: set on y's producer where it requantises, y has no
        reader yet and the producer's check still passes; else through a QUANTIZE."""
        want = self.tensors[like].quant
        t = self.tensors[y]
        if _same_quant(t.quant, want):
            return y
        producer = next((op for op in self.ops if y in op.outputs), None)
        if producer is not None and producer.kind in _REQUANTISING \
                and not any(y in op.inputs for op in self.ops):
            self.tensors[y] = Tensor(t.name, t.shape, t.dtype, want)
            if self.fits(producer):
                return y
            self.tensors[y] = t
        z = self.tensor(t.shape, "int8", want)
        self.rms[z] = self.rms[y]
        self.op("QUANTIZE", [y], [z])
        return z

    # -- element-wise ---------------------------------------------------------------------------

    def unary(self, x: str, kind: str = "") -> str:
        rng = self.rng
        kind = kind or str(rng.choice(_UNARY))
        shape, rms = self.shape(x), self.rms[x]
        inputs, attrs = [x], {}
        if kind == "RELU6":
            y = self.like(x, shape)
        elif kind in ("LOGISTIC", "TANH"):
            y = self.tensor(shape, "int8", _qp(1.0 / 256.0, -128) if kind == "LOGISTIC" else
                            _qp(1.0 / 128.0, 0))
            self.rms[y] = 0.5
        else:
            y = self.activation(shape, rms, "RELU" if kind == "RELU" else "NONE")
            if kind == "LEAKY_RELU":
                attrs["alpha"] = float(np.float32(rng.choice([0.01, 0.1, 0.2, 0.5, -0.25, 1.5])))
            if kind == "PRELU":
                alpha_q = _qp(10.0 ** rng.uniform(-2.5, -1.5), int(rng.integers(-30, 31)))
                inputs.append(self.const_int8(self.broadcast_shape(shape), alpha_q))
        self.op(kind, inputs, [y], **attrs)
        if kind == "HARD_SWISH" and not self.fits(self.ops[-1]):  # its output / input scales
            self.tensors[y] = Tensor(y, shape, "int8", self.tensors[x].quant)
        return y

    def binary(self, a: str, b: str, kind: str) -> str:
        """a (op) b; MAXIMUM and MINIMUM need operands that share their parameters."""
        shape = tuple(int(d) for d in np.broadcast_shapes(self.shape(a), self.shape(b)))
        ra, rb = self.rms[a], self.rms[b]
        attrs: dict[str, Any] = {}
        if kind in ("MAXIMUM", "MINIMUM"):
            y = self.like(a, shape)
        elif kind == "SQUARED_DIFFERENCE":
            y = self.activation(shape, ra * ra + rb * rb, "RELU")  # a square is >= 0
        else:
            act = self.act()
            y = self.activation(shape, ra * rb if kind == "MUL" else math.hypot(ra, rb), act)
            attrs["activation"] = act
        self.op(kind, [a, b], [y], **attrs)
        return y

    def binary_const(self, x: str, kind: str = "") -> str:
        """x (op) a constant that broadcasts into it, the constant on either side."""
        kind = kind or str(self.rng.choice(_BINARY))
        quant = self.tensors[x].quant if kind in ("MAXIMUM", "MINIMUM") else \
            self.operand_quant(x)
        assert quant is not None
        c = self.const_int8(self.broadcast_shape(self.shape(x)), quant)
        return self.binary(x, c, kind) if self.rng.random() < 0.6 else self.binary(c, x, kind)

    def residual_v2(self, x: str, kind: str = "") -> str:
        """x (op) f(x), f shape-preserving (or the identity: x (op) x)."""
        rng = self.rng
        kind = kind or str(rng.choice(_BINARY))
        f = str(rng.choice(["conv", "depthwise", "unary", "binary_const", "identity"],
                           p=[0.25, 0.2, 0.25, 0.2, 0.1]))
        y = {"conv": lambda: self.conv(x, same_shape=True),
             "depthwise": lambda: self.depthwise(x, same_shape=True),
             "unary": lambda: self.unary(x),
             "binary_const": lambda: self.binary_const(x),
             "identity": lambda: x}[f]()
        if kind in ("MAXIMUM", "MINIMUM"):
            y = self.retarget(y, x)
        return self.binary(x, y, kind) if rng.random() < 0.5 else self.binary(y, x, kind)

    def reduce(self, x: str, kind: str, axes: tuple[int, ...], keep_dims: bool) -> str:
        shape = self.shape(x)
        rank = len(shape)
        resolved = sorted({a % rank for a in axes})
        n = math.prod(shape[a] for a in resolved)
        spread = self.rms[x] / max(1.0, math.sqrt(n) / 2.0) if kind == "MEAN" else \
            self.rms[x] * math.sqrt(n)
        out = tuple(1 if a in resolved else d for a, d in enumerate(shape)) if keep_dims else \
            tuple(d for a, d in enumerate(shape) if a not in resolved) or (1,)
        y = self.activation(out, spread, "NONE")
        self.op(kind, [x], [y], axes=tuple(axes), keep_dims=keep_dims)
        return y

    def random_axes(self, rank: int, first: int = 1) -> tuple[int, ...]:
        """A non-empty set of axes from `first` on, some written negative, maybe repeated."""
        rng = self.rng
        axes = [a for a in range(first, rank) if rng.random() < 0.5] or \
            [int(rng.integers(first, rank))]
        axes = [a - rank if rng.random() < 0.3 else a for a in axes]
        if rng.random() < 0.15:
            axes.append(axes[0])  # TFLite drops duplicates
        return tuple(int(a) for a in rng.permutation(axes))

    def reduce_step(self, x: str, kind: str = "") -> str:
        kind = kind or ("MEAN" if self.rng.random() < 0.6 else "SUM")
        return self.reduce(x, kind, self.random_axes(4), keep_dims=True)

    def squeeze_excite(self, x: str, kind: str = "") -> str:
        """x (op) g(reduce(x)): a reduced activation broadcast back over x."""
        rng = self.rng
        axes = [(1, 2), (1,), (2,), (3,), (1, 2)][int(rng.integers(0, 5))]
        keep = axes != (1, 2) or rng.random() < 0.6  # (1, C) broadcasts as (1, 1, 1, C) does
        m = self.reduce(x, "MEAN" if rng.random() < 0.7 else "SUM", axes, keep)
        if rng.random() < 0.6:
            m = self.unary(m, str(rng.choice(["LOGISTIC", "HARD_SWISH", "RELU", "TANH"])))
        kind = kind or str(rng.choice(_BINARY, p=[0.15, 0.15, 0.4, 0.1, 0.1, 0.1]))
        if kind in ("MAXIMUM", "MINIMUM"):
            m = self.retarget(m, x)
        return self.binary(x, m, kind) if rng.random() < 0.6 else self.binary(m, x, kind)

    # -- branches -------------------------------------------------------------------------------

    def branch_step(self, p: str, axis: int, keep_shape: bool) -> str:
        """One op on a split piece that keeps every dim but maybe the split axis."""
        rng = self.rng
        choices = ["unary", "binary_const", "conv", "depthwise"]
        if axis == 3 and not keep_shape:
            choices.append("pointwise")
        f = str(rng.choice(choices))
        if f == "unary":
            return self.unary(p)
        if f == "binary_const":
            return self.binary_const(p)
        if f == "depthwise":
            return self.depthwise(p, same_shape=True)
        return self.conv(p, same_shape=True) if f == "conv" else self.pointwise(p)

    def pointwise(self, x: str, oc: int = 0) -> str:
        """A 1x1 convolution to `oc` (else a random number of) channels."""
        n, h, w, c = self.shape(x)
        oc = oc or int(self.rng.integers(1, 9))
        filt, w_rms = self.weights((oc, 1, 1, c), 0, bool(self.rng.random() < 0.6))
        acc_std = math.sqrt(c) * self.rms[x] * w_rms
        b, b_rms = self.bias(x, filt, oc, acc_std)
        act = self.act()
        y = self.activation((n, h, w, oc), math.hypot(acc_std, b_rms), act)
        self.op("CONV_2D", [x, filt, b], [y], stride=(1, 1), dilation=(1, 1), padding="SAME",
                activation=act)
        return y

    def split_concat(self, x: str, kind: str = "") -> str:
        """SPLIT / SPLIT_V -> per-piece ops -> CONCATENATION (maybe along another axis)."""
        rng = self.rng
        shape = self.shape(x)
        if max(shape[1:]) < 2:  # nothing to split: widen the channels first
            x, shape = self.pointwise(x, 2), shape[:3] + (2,)
        axes = [k for k in (1, 2, 3) if shape[k] >= 2]
        if kind == "SPLIT":  # an axis that splits evenly
            axes = [k for k in axes if shape[k] % 2 == 0]
            if not axes:
                x, shape, axes = self.pointwise(x, 2), shape[:3] + (2,), [3]
        # The outer axis half of the time: its pieces may be views of x, and rejoined pieces views
        # of the concatenation.
        # Equal pieces that keep their shape may rejoin along any axis (mostly the outer one).
        keep_shape = kind != "SPLIT_V" and rng.random() < 0.4
        k = 1 if 1 in axes and not keep_shape and rng.random() < 0.5 else int(rng.choice(axes))
        d = shape[k]
        # Cuts at whole multiples of `unit` rows keep every piece 4-byte aligned (the planner
        # places views at aligned offsets only); most splits take them where they exist.
        unit = 4 // math.gcd(math.prod(shape[k + 1:]), 4)
        if d < 2 * unit or rng.random() < 0.3:
            unit = 1
        even = [m for m in range(2, min(d, 4) + 1) if d % (m * unit) == 0] or \
            [m for m in range(2, min(d, 4) + 1) if d % m == 0]
        keep_shape = keep_shape and bool(even)
        if kind == "SPLIT" or keep_shape or even and kind != "SPLIT_V" and rng.random() < 0.5:
            kind, m = "SPLIT", int(rng.choice(even))
            sizes = [d // m] * m
        else:
            at = np.arange(unit, d, unit)
            kind, m = "SPLIT_V", int(rng.integers(2, min(len(at) + 1, 4) + 1))
            cuts = sorted(int(v) for v in rng.choice(at, m - 1, replace=False))
            sizes = [b - a for a, b in zip([0, *cuts], [*cuts, d])]
        pieces = [self.like(x, shape[:k] + (s,) + shape[k + 1:]) for s in sizes]
        axis_attr = k - 4 if rng.random() < 0.3 else k
        if kind == "SPLIT":
            self.op(kind, [x], pieces, axis=axis_attr)
        else:
            self.op(kind, [x], pieces, axis=axis_attr, sizes=tuple(sizes))
        joined = []
        for p in pieces:
            for _ in range(int(rng.integers(0, 3))):
                p = self.branch_step(p, k, keep_shape)
            joined.append(self.retarget(p, x))  # the concatenation shares x's parameters
        join = int(rng.choice([1, 1, 2, 3, 3])) if keep_shape else k
        if rng.random() < 0.3:
            joined = [joined[i] for i in rng.permutation(len(joined))]
        out = list(self.shape(joined[0]))
        out[join] = sum(self.shape(p)[join] for p in joined)
        y = self.like(x, tuple(out))
        self.op("CONCATENATION", joined, [y], axis=join, activation="NONE")
        return y

    def fan_concat(self, x: str) -> str:
        """Two or three branches from x, each a short chain, joined by a CONCATENATION along
        rows (a branch may take a slice of them first) or along channels (a branch may change
        their number)."""
        rng = self.rng
        axis = 1 if rng.random() < 0.5 else 3
        joined = []
        for _ in range(int(rng.integers(2, 4))):
            p = x
            n, h, w, c = self.shape(x)
            if axis == 1 and h > 1 and rng.random() < 0.3:  # some of the rows
                rows = int(rng.integers(1, h))
                p = self.like(x, (n, rows, w, c))
                self.op("SLICE", [x], [p], begin=(0, int(rng.integers(0, h - rows + 1)), 0, 0))
            for _ in range(int(rng.integers(1, 3))):
                p = self.branch_step(p, axis, keep_shape=False)
            joined.append(self.retarget(p, x))
        out = list(self.shape(joined[0]))
        out[axis] = sum(self.shape(p)[axis] for p in joined)
        y = self.like(x, tuple(out))
        self.op("CONCATENATION", joined, [y], axis=axis, activation="NONE")
        return y

    def unpack_pack(self, x: str) -> str:
        """UNPACK along a short axis -> per-slice ops -> PACK (maybe along another axis)."""
        rng = self.rng
        shape = self.shape(x)
        axes = [k for k in (1, 2, 3) if 2 <= shape[k] <= 4]
        if not axes:  # no short axis: make the channels one
            x = self.pointwise(x, int(rng.integers(2, 5)))
            shape, axes = self.shape(x), [3]
        k = int(rng.choice(axes))
        part_shape = shape[:k] + shape[k + 1:]
        parts = [self.like(x, part_shape) for _ in range(shape[k])]
        self.op("UNPACK", [x], parts, axis=k)
        packed = []
        for p in parts:
            if rng.random() < 0.6:
                p = self.unary(p) if rng.random() < 0.5 else self.binary_const(p)
            packed.append(self.retarget(p, x))
        j = int(rng.integers(1, 4))
        y = self.like(x, part_shape[:j] + (len(packed),) + part_shape[j:])
        self.op("PACK", packed, [y], axis=j)
        return y

    # -- data movement --------------------------------------------------------------------------

    def transpose(self, x: str) -> str:
        perm = (0, *(int(p) for p in self.rng.permutation([1, 2, 3])))
        shape = self.shape(x)
        y = self.like(x, tuple(shape[p] for p in perm))
        self.op("TRANSPOSE", [x], [y], perm=perm)
        return y

    def through_rank5(self, x: str) -> str:
        """EXPAND_DIMS to 5-D -> 5-D TRANSPOSE -> SQUEEZE of one unit axis (batch 1 first)."""
        rng = self.rng
        a = int(rng.integers(0, 5))
        shape = self.shape(x)
        s5 = shape[:a] + (1,) + shape[a:]
        e = self.like(x, s5)
        self.op("EXPAND_DIMS", [x], [e], axis=a - 5 if rng.random() < 0.3 else a)
        batch = 1 if a == 0 else 0
        first = int(rng.choice([batch, a]))
        rest = [int(p) for p in rng.permutation([i for i in range(5) if i != first])]
        perm = (first, *rest)
        t = self.like(x, tuple(s5[p] for p in perm))
        self.op("TRANSPOSE", [e], [t], perm=perm)
        j = perm.index(a if first == batch else batch)
        shape5 = self.shape(t)
        y = self.like(x, shape5[:j] + shape5[j + 1:])
        self.op("SQUEEZE", [t], [y], axes=(j - 5 if rng.random() < 0.3 else j,))
        return y

    def through_rank3(self, x: str) -> str:
        """Drop the batch axis (SQUEEZE or a shrinking STRIDED_SLICE), run a rank-3 op, then
        EXPAND_DIMS it back."""
        rng = self.rng
        shape = self.shape(x)
        r = self.like(x, shape[1:])
        if rng.random() < 0.5:
            self.op("SQUEEZE", [x], [r], axes=(0,))
        else:
            self.op("STRIDED_SLICE", [x], [r], begin=(0, 0, 0, 0), end=(1, *shape[1:]),
                    strides=(1, 1, 1, 1), begin_mask=0, end_mask=0, shrink_axis_mask=1)
        f = str(rng.choice(["unary", "binary_const", "transpose", "strided_slice"]))
        if f == "unary":
            r = self.unary(r)
        elif f == "binary_const":
            r = self.binary_const(r)
        elif f == "transpose":
            perm = tuple(int(p) for p in rng.permutation(3))
            t = self.like(r, tuple(self.shape(r)[p] for p in perm))
            self.op("TRANSPOSE", [r], [t], perm=perm)
            r = t
        else:
            r = self.strided_slice(r, first=0)
        y = self.like(r, (1, *self.shape(r)))
        self.op("EXPAND_DIMS", [r], [y], axis=0 if rng.random() < 0.5 else -4)
        return y

    def slice(self, x: str) -> str:
        rng = self.rng
        shape = self.shape(x)
        size = [shape[0]] + [int(rng.integers(1, d + 1)) for d in shape[1:]]
        begin = [0] + [int(rng.integers(0, d - s + 1)) for d, s in zip(shape[1:], size[1:])]
        y = self.like(x, tuple(size))
        attrs: dict[str, Any] = {"begin": tuple(begin)}
        if rng.random() < 0.5:
            attrs["size"] = tuple(size)
        self.op("SLICE", [x], [y], **attrs)
        return y

    def strided_slice(self, x: str, first: int = 1) -> str:
        """Random begin / end / strides (negative ones too) and masks on the axes from `first`
        (the batch axis before it is kept whole); a bounded, seeded search per axis for a
        choice that selects something, else the whole axis."""
        rng = self.rng
        shape = self.shape(x)
        begin, end, strides, bm, em = [], [], [], 0, 0
        out = []
        for k, d in enumerate(shape):
            choice = (0, d, 1, 0, 0)
            if k >= first:
                for _ in range(8):
                    s = int(rng.choice([1, 1, 2, 3, -1, -2]))
                    c = (int(rng.integers(-d - 1, d + 2)), int(rng.integers(-d - 1, d + 2)), s,
                         int(rng.random() < 0.2), int(rng.random() < 0.2))
                    walk = axis_walks((d,), {"begin": (c[0],), "end": (c[1],), "strides": (s,),
                                             "begin_mask": c[3], "end_mask": c[4]})[0]
                    if walk.count >= 1:
                        choice = c
                        break
            b, e, s, mb, me = choice
            begin.append(b)
            end.append(e)
            strides.append(s)
            bm, em = bm | mb << k, em | me << k
            out.append(axis_walks((d,), {"begin": (b,), "end": (e,), "strides": (s,),
                                         "begin_mask": mb, "end_mask": me})[0].count)
        y = self.like(x, tuple(out))
        self.op("STRIDED_SLICE", [x], [y], begin=tuple(begin), end=tuple(end),
                strides=tuple(strides), begin_mask=bm, end_mask=em, shrink_axis_mask=0)
        return y

    def depth_space(self, x: str, kind: str = "") -> str:
        rng = self.rng
        n, h, w, c = self.shape(x)
        if kind == "DEPTH_TO_SPACE" and c % 4:
            x, c = self.pointwise(x, 4), 4
        if kind == "DEPTH_TO_SPACE" or kind == "" and c % 4 == 0 and h * w * c <= _MAX_ELEMENTS \
                and (rng.random() < 0.5 or c > 8):
            y = self.like(x, (n, 2 * h, 2 * w, c // 4))
            self.op("DEPTH_TO_SPACE", [x], [y], block_size=2)
            return y
        b = 3 if h % 3 == 0 and w % 3 == 0 and rng.random() < 0.3 else 2
        if h % b or w % b:
            pads = [(0, 0), (0, -h % b), (-w % b, 0), (0, 0)]
            h, w = h + -h % b, w + -w % b
            p = self.like(x, (n, h, w, c))
            self.op("PAD", [x], [p], paddings=pads)
            x = p
        y = self.like(x, (n, h // b, w // b, c * b * b))
        self.op("SPACE_TO_DEPTH", [x], [y], block_size=b)
        if c * b * b > 16:  # too deep to keep: back to space
            z = self.like(x, (n, h, w, c))
            self.op("DEPTH_TO_SPACE", [y], [z], block_size=b)
            y = z
        return y

    def resize(self, x: str, kind: str = "") -> str:
        rng = self.rng
        n, h, w, c = self.shape(x)
        kind = kind or ("RESIZE_BILINEAR" if rng.random() < 0.5 else "RESIZE_NEAREST_NEIGHBOR")
        flags = [(False, False), (True, False), (False, True)]
        for _ in range(4):
            size = (int(rng.integers(1, 13)), int(rng.integers(1, 13)))
            if size[0] * size[1] * c > _MAX_ELEMENTS:
                continue
            align, half = flags[int(rng.integers(0, 3))]
            n_tensors = len(self.tensors)
            y = self.like(x, (n, *size, c))
            self.op(kind, [x], [y], size=size, align_corners=align, half_pixel_centers=half)
            if self.fits(self.ops[-1]):
                return y
            self.undo(n_tensors)
        y = self.like(x, (n, h, w, c))  # same size, no flags: always valid
        self.op(kind, [x], [y], size=(h, w), align_corners=False,
                half_pixel_centers=False)
        return y

    # -- arithmetic -----------------------------------------------------------------------------

    def transpose_conv(self, x: str) -> str:
        rng = self.rng
        n, h, w, c = self.shape(x)
        stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        padding = "SAME" if rng.random() < 0.5 else "VALID"
        out = []
        for i, s, f in zip((h, w), stride, k):
            # Every output size that a convolution maps back onto the input.
            lo, hi = ((i - 1) * s + f, (i - 1) * s + f + s - 1) if padding == "VALID" else \
                ((i - 1) * s + 1, i * s)
            out.append(int(rng.integers(lo, hi + 1)))
        oc = int(rng.integers(1, 9))
        while out[0] * out[1] * oc > _MAX_ELEMENTS and oc > 1:
            oc //= 2
        filt, w_rms = self.weights((oc, *k, c), 0, bool(rng.random() < 0.6))
        acc_std = math.sqrt(max(1.0, k[0] * k[1] / (stride[0] * stride[1])) * c) * \
            self.rms[x] * w_rms
        b, b_rms = self.bias(x, filt, oc, acc_std)
        act = self.act()
        y = self.activation((n, out[0], out[1], oc), math.hypot(acc_std, b_rms), act)
        self.op("TRANSPOSE_CONV", [x, filt] + ([b] if b else []), [y],
                output_shape=(n, out[0], out[1], oc), stride=stride, padding=padding,
                activation=act)
        return y

    def batch_matmul(self, x: str) -> str:
        """x @ constant (batch-broadcast, maybe adjoint), or x with itself (x x^T, x^T x)."""
        rng = self.rng
        n, h, w, c = self.shape(x)
        variants = ["const", "const"]
        if h * w * w <= _MAX_ELEMENTS:
            variants.append("x_xt")
        if h * c * c <= _MAX_ELEMENTS:
            variants.append("xt_x")
        v = str(rng.choice(variants))
        if v == "x_xt":
            rhs, attrs, depth, out = x, {"adj_x": False, "adj_y": True}, c, (n, h, w, w)
        elif v == "xt_x":
            rhs, attrs, depth, out = x, {"adj_x": True, "adj_y": False}, w, (n, h, c, c)
        else:
            adj_x, adj_y = bool(rng.random() < 0.3), bool(rng.random() < 0.5)
            rows, depth = (c, w) if adj_x else (w, c)
            k = int(rng.integers(1, 9))
            mat = (k, depth) if adj_y else (depth, k)
            batch = [(), (1,), (h,), (1, 1), (1, h)][int(rng.integers(0, 5))]
            quant = _qp(10.0 ** rng.uniform(-2.5, -1.0), int(rng.integers(-10, 11)))
            rhs = self.const_int8((*batch, *mat), quant)
            attrs, out = {"adj_x": adj_x, "adj_y": adj_y}, (n, h, rows, k)
        spread = math.sqrt(depth) * self.rms[x] * self.rms[rhs]
        y = self.activation(out, spread, "NONE")
        self.op("BATCH_MATMUL", [x, rhs], [y], **attrs)
        return y

    def stem(self, x: str) -> str:
        """A wide full-resolution convolution, an element-wise op with a per-channel constant
        or none, then a stride-2 reduction: the memory-heavy opening patches pay off on."""
        rng = self.rng
        n, h, w, c = self.shape(x)
        y = self.pointwise(x, 8) if rng.random() < 0.5 else self.conv(x, same_shape=True)
        if rng.random() < 0.7:
            kind = str(rng.choice(_BINARY))
            quant = self.tensors[y].quant if kind in ("MAXIMUM", "MINIMUM") else \
                self.operand_quant(y)
            assert quant is not None
            const = self.const_int8((self.shape(y)[-1],), quant)
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
        """A max pool of stride 2 (SAME) where a tensor grew too large."""
        n, h, w, c = self.shape(x)
        y = self.like(x, (n, (h + 1) // 2, (w + 1) // 2, c))
        self.op("MAX_POOL_2D", [x], [y], stride=(2, 2), filter=(2, 2), padding="SAME",
                activation="NONE")
        return y


_STEPS_V2: dict[str, Callable[[_MixedBuilder, str], str]] = {
    "unary": lambda b, x: b.unary(x),
    "binary_const": lambda b, x: b.binary_const(x),
    "residual": lambda b, x: b.residual_v2(x),
    "squeeze_excite": lambda b, x: b.squeeze_excite(x),
    "split_concat": lambda b, x: b.split_concat(x),
    "fan_concat": lambda b, x: b.fan_concat(x),
    "unpack_pack": lambda b, x: b.unpack_pack(x),
    "transpose": lambda b, x: b.transpose(x),
    "rank5": lambda b, x: b.through_rank5(x),
    "rank3": lambda b, x: b.through_rank3(x),
    "slice": lambda b, x: b.slice(x),
    "strided_slice": lambda b, x: b.strided_slice(x),
    "depth_space": lambda b, x: b.depth_space(x),
    "reduce": lambda b, x: b.reduce_step(x),
    "resize": lambda b, x: b.resize(x),
    "transpose_conv": lambda b, x: b.transpose_conv(x),
    "batch_matmul": lambda b, x: b.batch_matmul(x),
    "pad": lambda b, x: b.pad(x),
    "conv": lambda b, x: b.conv(x, pointwise=bool(b.rng.random() < 0.25)),
    "depthwise": lambda b, x: b.depthwise(x),
    "pool": lambda b, x: b.pool(x, str(b.rng.choice(["AVERAGE_POOL_2D", "MAX_POOL_2D"]))),
    "stem": lambda b, x: b.stem(x),
}
# Steps that can run patch by patch (element-wise with per-channel constants, windowed): the
# first step is one of them half of the time, so patch-based inference gets a stage to cut.
_PATCHABLE_STEPS = ("stem", "stem", "unary", "binary_const", "pad", "conv", "depthwise",
                    "residual")


def _focus_step(kind: str) -> Callable[[_MixedBuilder, str], str]:
    """A step that is sure to emit an op of `kind` (one of NEW_KINDS)."""
    def step(b: _MixedBuilder, x: str) -> str:
        pick = int(b.rng.integers(0, 3))
        if kind in _BINARY:
            return (b.binary_const, b.residual_v2, b.squeeze_excite)[pick](x, kind)
        if kind in _UNARY:
            return b.unary(x, kind)
        if kind == "CONCATENATION":
            return (b.split_concat, b.fan_concat)[pick % 2](x)
        if kind in ("SPLIT", "SPLIT_V"):
            return b.split_concat(x, kind)
        if kind in ("DEPTH_TO_SPACE", "SPACE_TO_DEPTH"):
            return b.depth_space(x, kind)
        if kind in ("MEAN", "SUM"):
            return b.reduce_step(x, kind)
        if kind.startswith("RESIZE_"):
            return b.resize(x, kind)
        if kind == "EXPAND_DIMS":
            return (b.through_rank3, b.through_rank5)[pick % 2](x)
        if kind in ("TRANSPOSE", "SQUEEZE"):  # a 5-D detour has both
            return b.through_rank5(x) if kind == "SQUEEZE" or pick else b.transpose(x)
        name = {"PACK": "unpack_pack", "UNPACK": "unpack_pack", "SLICE": "slice",
                "STRIDED_SLICE": "strided_slice", "TRANSPOSE_CONV": "transpose_conv",
                "BATCH_MATMUL": "batch_matmul", "PAD": "pad"}[kind]
        return _STEPS_V2[name](b, x)
    return step


def _head_v2(b: _MixedBuilder, x: str) -> str:
    """Optionally end below rank 4: a reduction, a squeeze, a shrinking strided slice, or a
    classifier (flatten, FULLY_CONNECTED, maybe SOFTMAX)."""
    rng = b.rng
    head = str(rng.choice(["none", "reduce", "squeeze", "shrink", "classifier"],
                          p=[0.35, 0.2, 0.15, 0.1, 0.2]))
    shape = b.shape(x)
    if head == "reduce":
        return b.reduce(x, "MEAN" if rng.random() < 0.6 else "SUM", b.random_axes(4, 0), False)
    if head == "squeeze":
        units = [k for k, d in enumerate(shape) if d == 1]
        axes = () if rng.random() < 0.5 else tuple(
            int(k) for k in rng.choice(units, int(rng.integers(1, len(units) + 1)),
                                       replace=False))
        dropped = set(axes) if axes else set(units)
        y = b.like(x, tuple(d for k, d in enumerate(shape) if k not in dropped) or (1,))
        b.op("SQUEEZE", [x], [y], axes=axes)
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
        if rng.random() < 0.5:
            x = b.softmax(x)
    return x


def random_graph_v2(rng: np.random.Generator, max_ops: int = 5,
                    focus: tuple[str, ...] = ()) -> Graph:
    """A random int8 graph mixing NEW_KINDS with the older ops: 1 to `max_ops` random steps
    (each one or several ops) on a random NHWC input, plus one step sure to emit each kind in
    `focus` at a random place in the chain, then maybe a lower-rank head and a second graph
    output taken from inside the graph. It always passes verify()."""
    b = _MixedBuilder(rng)
    shape = (1, int(rng.integers(2, 17)), int(rng.integers(2, 17)),
             int(rng.choice([1, 2, 3, 4, 4, 6, 8, 8])))
    scale = 10.0 ** rng.uniform(-2.5, -0.5)
    zp = int(rng.integers(-128, 128))
    x = b.tensor(shape, "int8", _qp(scale, zp))
    b.rms[x] = scale * math.hypot(_UNIFORM_INT8_STD, zp + 0.5)
    y = x
    steps = [_STEPS_V2[str(rng.choice(_PATCHABLE_STEPS if i == 0 and rng.random() < 0.5
                                      else list(_STEPS_V2)))]
             for i in range(int(rng.integers(1, max_ops + 1)))]
    for kind in focus:
        steps.insert(int(rng.integers(0, len(steps) + 1)), _focus_step(kind))
    for step in steps:
        y = step(b, y)
        while b.tensors[y].size > _MAX_ELEMENTS:
            y = b.shrink(y)
    y = _head_v2(b, y)
    outputs = [y]
    inner = [n for op in b.ops for n in op.outputs if n != y]
    if inner and rng.random() < 0.25:
        outputs.append(str(rng.choice(inner)))
    graph = Graph(b.tensors, b.ops, [x], outputs, name="random_v2")
    verify(graph)
    return graph
