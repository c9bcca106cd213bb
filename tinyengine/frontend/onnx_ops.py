"""ONNX node converters: each supported node type -> engine IR ops, with fusion and layout.

One converter per node type in `_CONVERTERS`, driven by onnx_reader.load_onnx. BatchNormalization
and per-channel constant Adds after a Conv/Gemm/MatMul fold into its weights and bias; a Relu or
Clip(0, 6) after a Conv/Gemm/MatMul/Add/pool becomes its fused activation; weights move from
ONNX's OIHW to TFLite's layouts; paddings SAME/VALID cannot express become PAD ops.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import TinyEngineError
from ..ir import Graph, Op, Tensor
from ..ops import REGISTRY, get_op
from ..ops.common import out_size, pad_before


class Unsupported(Exception):
    """A node the engine cannot run; the message says why."""


def _static_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    g = model.graph
    shapes = {t.name: tuple(int(d) for d in t.dims) for t in g.initializer}
    for v in list(g.input) + list(g.value_info) + list(g.output):
        tt = v.type.tensor_type
        if tt.HasField("shape") and all(d.dim_value > 0 for d in tt.shape.dim):
            shapes[v.name] = tuple(int(d.dim_value) for d in tt.shape.dim)
    return shapes


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)


def node_attrs(node: onnx.NodeProto) -> dict[str, Any]:
    out = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in out.items()}


def nhwc(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[0], shape[2], shape[3], shape[1]) if len(shape) == 4 else shape


def order_agrees(shape: tuple[int, ...]) -> bool:
    """NCHW and NHWC list this tensor's elements in the same order (batch 1)."""
    return len(shape) != 4 or shape[1] == 1 or shape[2] * shape[3] == 1


@dataclass
class OnnxBuilder:
    source: str
    nodes: list[onnx.NodeProto]
    consts: dict[str, np.ndarray]
    shapes: dict[str, tuple[int, ...]]
    alias: dict[str, str]  # Identity/Dropout outputs -> their input
    consumers: dict[str, list[int]]  # tensor -> indices of the nodes reading it
    graph_outputs: set[str]
    opset: int
    tensors: dict[str, Tensor] = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)
    fused: set[int] = field(default_factory=set)  # nodes absorbed into an earlier op
    shares_quant: dict[str, str] = field(default_factory=dict)
    chw_flattened: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    def name(self, tensor: str) -> str:
        while tensor in self.alias:
            tensor = self.alias[tensor]
        return tensor

    def shape(self, tensor: str) -> tuple[int, ...]:
        tensor = self.name(tensor)
        if tensor not in self.shapes:
            raise Unsupported(f"the shape of {tensor} is unknown after shape inference")
        return self.shapes[tensor]

    def const(self, tensor: str, what: str) -> np.ndarray:
        tensor = self.name(tensor)
        if tensor not in self.consts:
            raise Unsupported(f"its {what} ({tensor}) is not a constant")
        return self.consts[tensor].astype(np.float64)

    def activation(self, tensor: str, rank: tuple[int, ...] = (1, 2, 3, 4)) -> str:
        """An activation input's IR name; constants and flattened-CHW tensors are refused."""
        name = self.name(tensor)
        if name in self.consts:
            raise Unsupported(f"its input {name} is a constant")
        if name in self.chw_flattened:
            raise Unsupported(f"its input {name} is a flattened NCHW tensor, whose CHW order "
                               "only a Gemm/MatMul can absorb")
        if len(self.shape(name)) not in rank:
            raise Unsupported(f"its input {name} has rank {len(self.shape(name))}")
        return name

    def sole_consumer(self, tensor: str) -> tuple[int, onnx.NodeProto] | None:
        tensor = self.name(tensor)
        users = self.consumers.get(tensor, [])
        if len(users) != 1 or tensor in self.graph_outputs or users[0] in self.fused:
            return None
        return users[0], self.nodes[users[0]]

    def fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self.tensors or name in self.shapes or name in self.consts:
            name, k = f"{base}_{k}", k + 1
        return name

    def add_const(self, name: str, data: np.ndarray) -> str:
        name = self.fresh(name)
        arr = np.ascontiguousarray(data, np.float32)
        self.tensors[name] = Tensor(name, tuple(arr.shape), "float32", None, arr)
        return name

    def emit(self, kind: str, node: onnx.NodeProto, inputs: list[str], output: str,
             attrs: dict[str, Any], shape: tuple[int, ...] | None = None,
             suffix: str = "") -> Op:
        """Append an IR op named after `node` writing `output` (an ONNX tensor, or a synthetic
        one of `shape`); check that the op's own shape rule gives the shape ONNX inferred."""
        ir_shape = nhwc(self.shape(output)) if shape is None else shape
        for n in inputs:  # a stand-in where the producer failed: the error lists that one
            if n and n not in self.tensors:
                self.tensors[n] = Tensor(n, nhwc(self.shape(n)), "float32")
        self.tensors[output] = Tensor(output, ir_shape, "float32")
        base = re.sub(r"[^A-Za-z0-9_./:-]", "_", node.name or f"{node.op_type}_{len(self.ops)}")
        base += suffix
        names = {o.name for o in self.ops}
        op_name, k = base, 1
        while op_name in names:
            op_name, k = f"{base}_{k}", k + 1
        op = Op(op_name, kind, inputs, [output], attrs)
        view = Graph(self.tensors, self.ops, [], [])
        computed = tuple(get_op(kind).infer_shapes(view, op)[0])
        if computed != ir_shape:
            raise Unsupported(f"as {kind} it computes shape {computed}, ONNX says {ir_shape} "
                               "(ceil_mode or a padding the engine cannot express)")
        self.ops.append(op)
        return op


def _prepare(model: onnx.ModelProto, source: str) -> OnnxBuilder:
    g = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    alias: dict[str, str] = {}
    nodes: list[onnx.NodeProto] = []
    for node in g.node:
        mask_used = node.op_type == "Dropout" and len(node.output) > 1 and node.output[1]
        if node.op_type in ("Identity", "Dropout") and not mask_used:
            alias[node.output[0]] = node.input[0]
        else:
            nodes.append(node)
    b = OnnxBuilder(source, nodes, consts, _static_shapes(model), alias, {}, set(), _opset(model))
    for i, node in enumerate(nodes):
        for n in node.input:
            if n:
                b.consumers.setdefault(b.name(n), []).append(i)
    b.graph_outputs = {b.name(o.name) for o in g.output}
    return b


# ---------------------------------------------------------------------------------------------
# Fusion: what follows a Conv/Gemm/Add/pool
# ---------------------------------------------------------------------------------------------

def clip_bounds(b: OnnxBuilder, node: onnx.NodeProto) -> tuple[float, float]:
    a = node_attrs(node)
    lo, hi = float(a.get("min", -np.inf)), float(a.get("max", np.inf))
    if len(node.input) > 1 and node.input[1]:
        lo = float(b.const(node.input[1], "min"))
    if len(node.input) > 2 and node.input[2]:
        hi = float(b.const(node.input[2], "max"))
    return lo, hi


def activation_of(b: OnnxBuilder, node: onnx.NodeProto) -> str | None:
    """RELU/RELU6 if the node is one, else None."""
    if node.op_type == "Relu":
        return "RELU"
    if node.op_type == "Clip":
        try:
            lo, hi = clip_bounds(b, node)
        except Unsupported:
            return None
        if lo == 0.0 and hi == 6.0:
            return "RELU6"
        if lo == 0.0 and hi == np.inf:
            return "RELU"
    return None


def channel_constant(b: OnnxBuilder, name: str, out_shape: tuple[int, ...]) -> np.ndarray | None:
    """Values of a constant that, added to a tensor of `out_shape`, adds one value per channel
    (axis 1, ONNX layout); None if it is not such a constant."""
    name = b.name(name)
    if name not in b.consts:
        return None
    c = b.consts[name].astype(np.float64)
    try:
        if np.broadcast_shapes(c.shape, out_shape) != tuple(out_shape):
            return None
    except ValueError:
        return None
    per = np.moveaxis(np.broadcast_to(c, out_shape), 1, 0).reshape(out_shape[1], -1)
    return per[:, 0] if np.all(per == per[:, :1]) else None


@dataclass
class _Tail:
    """y = act(x * scale + shift) per output channel, written to `output`."""

    output: str
    activation: str
    scale: np.ndarray
    shift: np.ndarray


def bn_affine(b: OnnxBuilder, node: onnx.NodeProto) -> tuple[np.ndarray, np.ndarray]:
    a = node_attrs(node)
    if a.get("training_mode", 0):
        raise Unsupported("BatchNormalization in training mode")
    gamma, beta, mean, var = (b.const(n, w) for n, w in zip(
        node.input[1:5], ("scale", "bias", "mean", "variance")))
    factor = gamma / np.sqrt(var + float(a.get("epsilon", 1e-5)))
    return factor, beta - mean * factor


def fold_tail(b: OnnxBuilder, output: str, channels: int, affine: bool) -> _Tail:
    """Absorb the chain after an op: constant per-channel Adds and BatchNormalizations (if
    `affine`), then one Relu/Clip; each link must be the sole reader of the previous output."""
    tail = _Tail(output, "NONE", np.ones(channels), np.zeros(channels))
    while (nxt := b.sole_consumer(tail.output)) is not None:
        i, node = nxt
        act = activation_of(b, node)
        if act is not None:
            tail.activation = act
        elif not affine:
            break
        elif node.op_type == "BatchNormalization":
            try:
                f, s = bn_affine(b, node)
            except Unsupported:
                break
            tail.scale, tail.shift = tail.scale * f, tail.shift * f + s
        elif node.op_type == "Add":
            other = [n for n in node.input if b.name(n) != b.name(tail.output)]
            add = channel_constant(b, other[0], b.shape(tail.output)) if len(other) == 1 \
                else None
            if add is None:
                break
            tail.shift = tail.shift + add
        else:
            break
        b.fused.add(i)
        tail.output = node.output[0]
        if act is not None:
            break
    return tail


# Who can absorb what: BN folds into weights, activations into any op with a fused activation.
# Only used to explain a refusal: the converters that call fold_tail (affine: BatchNorm too).
_AFFINE_HOSTS = {"Conv", "ConvTranspose", "Gemm", "MatMul"}
_ACTIVATION_HOSTS = _AFFINE_HOSTS | {"Add", "Sub", "Mul", "AveragePool", "MaxPool",
                                     "GlobalAveragePool"}


def apply_tail(tail: _Tail, w: np.ndarray, bias: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """Weights (output channels first) and bias with the tail's per-channel affine folded in:
    w' = w * scale, b' = b * scale + shift. No bias stays no bias unless the shift needs one."""
    w = w * tail.scale.reshape((-1,) + (1,) * (w.ndim - 1))
    if bias is None and not tail.shift.any():
        return w, None
    return w, (0.0 if bias is None else bias) * tail.scale + tail.shift


def _why_not_fused(b: OnnxBuilder, node: onnx.NodeProto) -> str:
    src = b.name(node.input[0])
    producer = next((n for n in b.nodes if src in n.output), None)
    bn = node.op_type == "BatchNormalization"
    hosts = _AFFINE_HOSTS if bn else _ACTIVATION_HOSTS
    what = "/".join(sorted(hosts))
    if node.op_type == "Clip" and activation_of(b, node) is None:
        return "only Clip(0, 6) (ReLU6) and Clip(0, inf) (ReLU) are supported"
    if producer is None:
        return f"it applies to the graph input {src}, and only a {what} can absorb it"
    if len(b.consumers.get(src, [])) > 1 or src in b.graph_outputs:
        return f"its input {src} is also used elsewhere, so it cannot be fused into " \
               f"{producer.op_type} ({producer.name})"
    if producer.op_type in hosts:
        return f"it could not be fused into {producer.op_type} ({producer.name})"
    return f"it follows {producer.op_type} ({producer.name}), and only a {what} can absorb it"


def _unfusable(b: OnnxBuilder, i: int, node: onnx.NodeProto) -> None:
    if node.op_type == "BatchNormalization":
        bn_affine(b, node)  # its own reason first, if it has one
    raise Unsupported(_why_not_fused(b, node))


# ---------------------------------------------------------------------------------------------
# Converters: one per ONNX op type
# ---------------------------------------------------------------------------------------------

def pairs(a: dict[str, Any], key: str, default: int) -> tuple[int, int]:
    """A 2-D window attribute (strides, dilations, kernel_shape): two values >= 1."""
    v = a.get(key, [default, default])
    if len(v) != 2:
        raise Unsupported(f"{key} {list(v)}: only 2-D windows are supported")
    if min(int(v[0]), int(v[1])) < 1:
        raise Unsupported(f"{key} {list(v)}: every value must be at least 1")
    return int(v[0]), int(v[1])


def bias_of(b: OnnxBuilder, node: onnx.NodeProto, channels: int) -> np.ndarray | None:
    """The node's optional bias input (input 2): a constant with one value per output channel."""
    if len(node.input) <= 2 or not node.input[2]:
        return None
    bias = b.const(node.input[2], "bias")
    if bias.shape != (channels,):
        raise Unsupported(f"bias {b.name(node.input[2])} has shape {bias.shape}; it needs one "
                          f"value per output channel ({channels},)")
    return bias


def same_pads(in_hw: tuple[int, ...], k: tuple[int, int], stride: tuple[int, int],
               dil: tuple[int, int]) -> list[tuple[int, int]]:
    """TFLite SAME's (before, after) padding per spatial dim; the odd pixel goes after."""
    pads = []
    for size, kk, s, d in zip(in_hw, k, stride, dil):
        out = out_size(size, kk, s, d, "SAME")
        total = max((out - 1) * s + (kk - 1) * d + 1 - size, 0)
        before = pad_before(size, kk, s, d, out)
        pads.append((before, total - before))
    return pads


def onnx_pads(a: dict[str, Any], same: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The node's (before, after) padding per spatial dim, auto_pad resolved."""
    auto = a.get("auto_pad", "NOTSET")
    if auto == "VALID":
        return [(0, 0), (0, 0)]
    if auto == "SAME_UPPER":
        return same
    if auto == "SAME_LOWER":  # the odd pixel goes before
        return [(after, before) for before, after in same]
    p = [int(v) for v in a.get("pads", [0, 0, 0, 0])]
    if min(p) < 0:
        raise Unsupported(f"negative pads {p}")
    return [(p[0], p[2]), (p[1], p[3])]


def pad_mode(pads: list[tuple[int, int]], same: list[tuple[int, int]]
            ) -> tuple[str, list[tuple[int, int]] | None]:
    """("SAME" or "VALID", None), or ("VALID", pads) when the padding is neither and must become
    an explicit PAD before the op."""
    if all(v == 0 for pr in pads for v in pr):
        return "VALID", None
    if pads == same:
        return "SAME", None
    return "VALID", pads


def insert_pad(b: OnnxBuilder, node: onnx.NodeProto, x: str, pads: list[tuple[int, int]]) -> str:
    """An explicit PAD before a windowed op; its output has no ONNX counterpart."""
    n, h, w, c = nhwc(b.shape(x))
    out = b.fresh(f"{x}/pad")
    shape = (n, h + sum(pads[0]), w + sum(pads[1]), c)
    b.emit("PAD", node, [x], out, {"paddings": [(0, 0), pads[0], pads[1], (0, 0)]}, shape,
           suffix="/pad")
    b.shares_quant[out] = x
    return out


def ceil_is_same(b: OnnxBuilder, out: str, ih: int, iw: int, k: tuple[int, int],
                  stride: tuple[int, int], same: list[tuple[int, int]]) -> bool:
    """ceil_mode without pads is TFLite SAME when both give the same output size and SAME
    pads nothing at the start."""
    oh = out_size(ih, k[0], stride[0], 1, "SAME")
    ow = out_size(iw, k[1], stride[1], 1, "SAME")
    return b.shape(out)[2:] == (oh, ow) and same[0][0] == same[1][0] == 0


def nonnegative(b: OnnxBuilder, x: str) -> bool:
    """The activation is >= 0 by a fused ReLU, so zero padding never wins a max."""
    producer = next((op for op in b.ops if x in op.outputs), None)
    return producer is not None and producer.attrs.get("activation") in ("RELU", "RELU6")


_Converter = Callable[[OnnxBuilder, int, onnx.NodeProto], None]

# Node types no registered op converts: what the fusion after a Conv/Gemm/Add/pool did not absorb
# (refused with the reason). Relu and Clip have their own ops now (RELU, RELU6), which take
# precedence; the entries stay for a build whose registry lacks them.
_FALLBACK: dict[str, _Converter] = {
    "BatchNormalization": _unfusable, "Relu": _unfusable, "Clip": _unfusable,
}


def onnx_converters() -> dict[str, _Converter]:
    """ONNX node type -> converter: each registered op's `from_onnx` for its `onnx_types`, then
    the fallbacks. Two ops claiming one node type is a programming error."""
    table: dict[str, _Converter] = {}
    owner: dict[str, str] = {}
    for kind, opdef in sorted(REGISTRY.items()):
        for t in opdef.onnx_types:
            if t in owner:
                raise TinyEngineError(f"ONNX node type {t} is claimed by both {owner[t]} and "
                                      f"{kind}")
            owner[t] = kind
            table[t] = opdef.from_onnx
    for t, fn in _FALLBACK.items():
        table.setdefault(t, fn)
    return table
