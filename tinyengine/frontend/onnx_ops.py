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

from ..ir import Graph, Op, Tensor
from ..ops import get_op
from ..ops.common import out_size, pad_before


class _Unsupported(Exception):
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


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    out = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in out.items()}


def _nhwc(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[0], shape[2], shape[3], shape[1]) if len(shape) == 4 else shape


def _order_agrees(shape: tuple[int, ...]) -> bool:
    """NCHW and NHWC list this tensor's elements in the same order (batch 1)."""
    return len(shape) != 4 or shape[1] == 1 or shape[2] * shape[3] == 1


@dataclass
class _Builder:
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
            raise _Unsupported(f"the shape of {tensor} is unknown after shape inference")
        return self.shapes[tensor]

    def const(self, tensor: str, what: str) -> np.ndarray:
        tensor = self.name(tensor)
        if tensor not in self.consts:
            raise _Unsupported(f"its {what} ({tensor}) is not a constant")
        return self.consts[tensor].astype(np.float64)

    def activation(self, tensor: str, rank: tuple[int, ...] = (1, 2, 3, 4)) -> str:
        """An activation input's IR name; constants and flattened-CHW tensors are refused."""
        name = self.name(tensor)
        if name in self.consts:
            raise _Unsupported(f"its input {name} is a constant")
        if name in self.chw_flattened:
            raise _Unsupported(f"its input {name} is a flattened NCHW tensor, whose CHW order "
                               "only a Gemm/MatMul can absorb")
        if len(self.shape(name)) not in rank:
            raise _Unsupported(f"its input {name} has rank {len(self.shape(name))}")
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
        ir_shape = _nhwc(self.shape(output)) if shape is None else shape
        for n in inputs:  # a stand-in where the producer failed: the error lists that one
            if n and n not in self.tensors:
                self.tensors[n] = Tensor(n, _nhwc(self.shape(n)), "float32")
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
            raise _Unsupported(f"as {kind} it computes shape {computed}, ONNX says {ir_shape} "
                               "(ceil_mode or a padding the engine cannot express)")
        self.ops.append(op)
        return op


def _prepare(model: onnx.ModelProto, source: str) -> _Builder:
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
    b = _Builder(source, nodes, consts, _static_shapes(model), alias, {}, set(), _opset(model))
    for i, node in enumerate(nodes):
        for n in node.input:
            if n:
                b.consumers.setdefault(b.name(n), []).append(i)
    b.graph_outputs = {b.name(o.name) for o in g.output}
    return b


# ---------------------------------------------------------------------------------------------
# Fusion: what follows a Conv/Gemm/Add/pool
# ---------------------------------------------------------------------------------------------

def _clip_bounds(b: _Builder, node: onnx.NodeProto) -> tuple[float, float]:
    a = _attrs(node)
    lo, hi = float(a.get("min", -np.inf)), float(a.get("max", np.inf))
    if len(node.input) > 1 and node.input[1]:
        lo = float(b.const(node.input[1], "min"))
    if len(node.input) > 2 and node.input[2]:
        hi = float(b.const(node.input[2], "max"))
    return lo, hi


def _activation_of(b: _Builder, node: onnx.NodeProto) -> str | None:
    """RELU/RELU6 if the node is one, else None."""
    if node.op_type == "Relu":
        return "RELU"
    if node.op_type == "Clip":
        try:
            lo, hi = _clip_bounds(b, node)
        except _Unsupported:
            return None
        if lo == 0.0 and hi == 6.0:
            return "RELU6"
        if lo == 0.0 and hi == np.inf:
            return "RELU"
    return None


def _channel_constant(b: _Builder, name: str, out_shape: tuple[int, ...]) -> np.ndarray | None:
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


def _bn_affine(b: _Builder, node: onnx.NodeProto) -> tuple[np.ndarray, np.ndarray]:
    a = _attrs(node)
    if a.get("training_mode", 0):
        raise _Unsupported("BatchNormalization in training mode")
    gamma, beta, mean, var = (b.const(n, w) for n, w in zip(
        node.input[1:5], ("scale", "bias", "mean", "variance")))
    factor = gamma / np.sqrt(var + float(a.get("epsilon", 1e-5)))
    return factor, beta - mean * factor


def _fold_tail(b: _Builder, output: str, channels: int, affine: bool) -> _Tail:
    """Absorb the chain after an op: constant per-channel Adds and BatchNormalizations (if
    `affine`), then one Relu/Clip; each link must be the sole reader of the previous output."""
    tail = _Tail(output, "NONE", np.ones(channels), np.zeros(channels))
    while (nxt := b.sole_consumer(tail.output)) is not None:
        i, node = nxt
        act = _activation_of(b, node)
        if act is not None:
            tail.activation = act
        elif not affine:
            break
        elif node.op_type == "BatchNormalization":
            try:
                f, s = _bn_affine(b, node)
            except _Unsupported:
                break
            tail.scale, tail.shift = tail.scale * f, tail.shift * f + s
        elif node.op_type == "Add":
            other = [n for n in node.input if b.name(n) != b.name(tail.output)]
            add = _channel_constant(b, other[0], b.shape(tail.output)) if len(other) == 1 \
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
_AFFINE_HOSTS = {"Conv", "Gemm", "MatMul"}
_ACTIVATION_HOSTS = _AFFINE_HOSTS | {"Add", "AveragePool", "MaxPool", "GlobalAveragePool"}


def _apply_tail(tail: _Tail, w: np.ndarray, bias: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """Weights (output channels first) and bias with the tail's per-channel affine folded in:
    w' = w * scale, b' = b * scale + shift. No bias stays no bias unless the shift needs one."""
    w = w * tail.scale.reshape((-1,) + (1,) * (w.ndim - 1))
    if bias is None and not tail.shift.any():
        return w, None
    return w, (0.0 if bias is None else bias) * tail.scale + tail.shift


def _why_not_fused(b: _Builder, node: onnx.NodeProto) -> str:
    src = b.name(node.input[0])
    producer = next((n for n in b.nodes if src in n.output), None)
    bn = node.op_type == "BatchNormalization"
    hosts = _AFFINE_HOSTS if bn else _ACTIVATION_HOSTS
    what = "/".join(sorted(hosts))
    if node.op_type == "Clip" and _activation_of(b, node) is None:
        return "only Clip(0, 6) (ReLU6) and Clip(0, inf) (ReLU) are supported"
    if producer is None:
        return f"it applies to the graph input {src}, and only a {what} can absorb it"
    if len(b.consumers.get(src, [])) > 1 or src in b.graph_outputs:
        return f"its input {src} is also used elsewhere, so it cannot be fused into " \
               f"{producer.op_type} ({producer.name})"
    if producer.op_type in hosts:
        return f"it could not be fused into {producer.op_type} ({producer.name})"
    return f"it follows {producer.op_type} ({producer.name}), and only a {what} can absorb it"


def _unfusable(b: _Builder, i: int, node: onnx.NodeProto) -> None:
    if node.op_type == "BatchNormalization":
        _bn_affine(b, node)  # its own reason first, if it has one
    raise _Unsupported(_why_not_fused(b, node))


# ---------------------------------------------------------------------------------------------
# Converters: one per ONNX op type
# ---------------------------------------------------------------------------------------------

def _pairs(a: dict[str, Any], key: str, default: int) -> tuple[int, int]:
    v = a.get(key, [default, default])
    if len(v) != 2:
        raise _Unsupported(f"{key} {list(v)}: only 2-D windows are supported")
    return int(v[0]), int(v[1])


def _same_pads(in_hw: tuple[int, ...], k: tuple[int, int], stride: tuple[int, int],
               dil: tuple[int, int]) -> list[tuple[int, int]]:
    """TFLite SAME's (before, after) padding per spatial dim; the odd pixel goes after."""
    pads = []
    for size, kk, s, d in zip(in_hw, k, stride, dil):
        out = out_size(size, kk, s, d, "SAME")
        total = max((out - 1) * s + (kk - 1) * d + 1 - size, 0)
        before = pad_before(size, kk, s, d, out)
        pads.append((before, total - before))
    return pads


def _onnx_pads(a: dict[str, Any], same: list[tuple[int, int]]) -> list[tuple[int, int]]:
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
        raise _Unsupported(f"negative pads {p}")
    return [(p[0], p[2]), (p[1], p[3])]


def _window(pads: list[tuple[int, int]], same: list[tuple[int, int]]
            ) -> tuple[str, list[tuple[int, int]] | None]:
    """("SAME" or "VALID", None), or ("VALID", pads) when the padding is neither and must become
    an explicit PAD before the op."""
    if all(v == 0 for pr in pads for v in pr):
        return "VALID", None
    if pads == same:
        return "SAME", None
    return "VALID", pads


def _insert_pad(b: _Builder, node: onnx.NodeProto, x: str, pads: list[tuple[int, int]]) -> str:
    """An explicit PAD before a windowed op; its output has no ONNX counterpart."""
    n, h, w, c = _nhwc(b.shape(x))
    out = b.fresh(f"{x}/pad")
    shape = (n, h + sum(pads[0]), w + sum(pads[1]), c)
    b.emit("PAD", node, [x], out, {"paddings": [(0, 0), pads[0], pads[1], (0, 0)]}, shape,
           suffix="/pad")
    b.shares_quant[out] = x
    return out


def _conv(b: _Builder, i: int, node: onnx.NodeProto) -> None:
    a = _attrs(node)
    x = b.activation(node.input[0], rank=(4,))
    w = b.const(node.input[1], "weight")
    if w.ndim != 4:
        raise _Unsupported(f"weight shape {w.shape}: only 2-D convolution is supported")
    bias = b.const(node.input[2], "bias") if len(node.input) > 2 and node.input[2] else None
    _, cin, ih, iw = b.shape(x)
    groups, cout = int(a.get("group", 1)), w.shape[0]
    k, stride, dil = (w.shape[2], w.shape[3]), _pairs(a, "strides", 1), _pairs(a, "dilations", 1)
    same = _same_pads((ih, iw), k, stride, dil)
    padding, pads = _window(_onnx_pads(a, same), same)
    tail = _fold_tail(b, node.output[0], cout, affine=True)
    w, bias = _apply_tail(tail, w, bias)
    if pads is not None:
        x = _insert_pad(b, node, x, pads)
    attrs: dict[str, Any] = {"stride": stride, "dilation": dil, "padding": padding,
                             "activation": tail.activation}
    depthwise = groups > 1 and groups == cin
    if depthwise:
        kind, filt = "DEPTHWISE_CONV_2D", w.transpose(1, 2, 3, 0)  # (C*m,1,kh,kw) -> 1HW(C*m)
        attrs["depth_multiplier"] = cout // cin
    else:
        kind, filt = "CONV_2D", w.transpose(0, 2, 3, 1)  # OIHW -> OHWI, I = Cin/groups
        attrs["groups"] = groups
    op_name = node.name or f"conv_{i}"
    wname = b.add_const(f"{op_name}.filter", filt)
    bname = b.add_const(f"{op_name}.bias", bias) if bias is not None else ""
    b.emit(kind, node, [x, wname, bname], tail.output, attrs)


def _fully_connected(b: _Builder, node: onnx.NodeProto, x_onnx: str, w: np.ndarray,
                     bias: np.ndarray | None) -> None:
    """FULLY_CONNECTED from weights [out, in]; undoes a CHW flatten of the input."""
    x = b.name(x_onnx)
    if x in b.consts:
        raise _Unsupported(f"its input {x} is a constant")
    if len(b.shape(x)) != 2 or b.shape(x)[1] != w.shape[1]:
        raise _Unsupported(f"input shape {b.shape(x)}: only [batch, {w.shape[1]}] is supported")
    if x in b.chw_flattened:  # ONNX flattened in CHW order; the IR holds HWC order
        c, h, wd = b.chw_flattened[x]
        w = w.reshape(-1, c, h, wd).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
    tail = _fold_tail(b, node.output[0], w.shape[0], affine=True)
    w, bias = _apply_tail(tail, w, bias)
    op_name = node.name or node.output[0]
    wname = b.add_const(f"{op_name}.weights", w)
    bname = b.add_const(f"{op_name}.bias", bias) if bias is not None else ""
    b.emit("FULLY_CONNECTED", node, [x, wname, bname], tail.output,
           {"activation": tail.activation, "keep_num_dims": False})


def _gemm(b: _Builder, i: int, node: onnx.NodeProto) -> None:
    a = _attrs(node)
    if a.get("transA", 0) or float(a.get("alpha", 1.0)) != 1.0 \
            or float(a.get("beta", 1.0)) != 1.0:
        raise _Unsupported("only transA=0, alpha=1, beta=1 are supported")
    w = b.const(node.input[1], "weight")
    w = w if a.get("transB", 0) else w.T
    bias = None
    if len(node.input) > 2 and node.input[2]:
        c = b.const(node.input[2], "bias")
        if c.size not in (1, w.shape[0]) or (c.ndim == 2 and c.shape[0] != 1):
            raise _Unsupported(f"bias shape {c.shape} is not one value per output")
        bias = np.broadcast_to(c.reshape(-1), (w.shape[0],)).copy()
    _fully_connected(b, node, node.input[0], w, bias)


def _matmul(b: _Builder, i: int, node: onnx.NodeProto) -> None:
    w = b.const(node.input[1], "weight [in, out]")
    if w.ndim != 2:
        raise _Unsupported(f"weight shape {w.shape}: only a 2-D [in, out] weight is supported")
    _fully_connected(b, node, node.input[0], w.T, None)


def _add(b: _Builder, i: int, node: onnx.NodeProto) -> None:
    if any(b.name(n) in b.consts for n in node.input):
        raise _Unsupported("it adds a constant that is not a per-channel bias after a "
                           "Conv/Gemm/MatMul, so it cannot be folded")
    x, y = (b.activation(n) for n in node.input)
    if len(b.shape(x)) != len(b.shape(y)):
        raise _Unsupported(f"inputs of rank {len(b.shape(x))} and {len(b.shape(y))}")
    tail = _fold_tail(b, node.output[0], 0, affine=False)
    b.emit("ADD", node, [x, y], tail.output, {"activation": tail.activation})


def _pool(b: _Builder, i: int, node: onnx.NodeProto) -> None:
    a = _attrs(node)
    x = b.activation(node.input[0], rank=(4,))
    if len(node.output) > 1 and node.output[1]:
        raise _Unsupported("MaxPool indices are not supported")
    if _pairs(a, "dilations", 1) != (1, 1):
        raise _Unsupported("dilated pooling is not supported")
    _, _, ih, iw = b.shape(x)
    k, stride = _pairs(a, "kernel_shape", 1), _pairs(a, "strides", 1)
    same = _same_pads((ih, iw), k, stride, (1, 1))
    explicit = _onnx_pads(a, same)
    padding, pads = _window(explicit, same)
    average = node.op_type == "AveragePool"
    counts_pad = average and bool(a.get("count_include_pad", 0))
    if a.get("ceil_mode", 0) and padding == "VALID" and pads is None and not counts_pad \
            and _ceil_is_same(b, node.output[0], ih, iw, k, stride, same):
        padding = "SAME"  # the extra window sees the input's end and nothing after it
    if counts_pad and padding == "SAME":
        # TFLite's average leaves padding out of the count; counting it as zeros is an explicit
        # zero PAD followed by a VALID window.
        padding, pads = "VALID", explicit
    elif pads is not None and not counts_pad and (average or not _nonnegative(b, x)):
        raise _Unsupported(
            f"pads (before, after) per axis {pads} are neither TFLite SAME nor VALID, and "
            + ("count_include_pad=0 cannot become an explicit PAD" if average else
               "max pooling over an explicit zero PAD differs unless the input follows a ReLU"))
    tail = _fold_tail(b, node.output[0], 0, affine=False)
    if pads is not None:
        x = _insert_pad(b, node, x, pads)
    b.emit("AVERAGE_POOL_2D" if average else "MAX_POOL_2D", node, [x], tail.output,
           {"stride": stride, "filter": k, "padding": padding, "activation": tail.activation})


def _ceil_is_same(b: _Builder, out: str, ih: int, iw: int, k: tuple[int, int],
                  stride: tuple[int, int], same: list[tuple[int, int]]) -> bool:
    """ceil_mode without pads is TFLite SAME when both give the same output size and SAME
    pads nothing at the start."""
    oh = out_size(ih, k[0], stride[0], 1, "SAME")
    ow = out_size(iw, k[1], stride[1], 1, "SAME")
    return b.shape(out)[2:] == (oh, ow) and same[0][0] == same[1][0] == 0


def _nonnegative(b: _Builder, x: str) -> bool:
    """The activation is >= 0 by a fused ReLU, so zero padding never wins a max."""
    producer = next((op for op in b.ops if x in op.outputs), None)
    return producer is not None and producer.attrs.get("activation") in ("RELU", "RELU6")


def _global_average_pool(b: _Builder, i: int, node: onnx.NodeProto) -> None:
    x = b.activation(node.input[0], rank=(4,))
    _, _, h, w = b.shape(x)
    tail = _fold_tail(b, node.output[0], 0, affine=False)
    b.emit("AVERAGE_POOL_2D", node, [x], tail.output,
           {"stride": (1, 1), "filter": (h, w), "padding": "VALID",
            "activation": tail.activation})


def _reduce_mean(b: _Builder, i: int, node: onnx.NodeProto) -> None:
    a = _attrs(node)
    x = b.activation(node.input[0], rank=(4,))
    axes = a.get("axes")
    if len(node.input) > 1 and node.input[1]:
        axes = b.const(node.input[1], "axes").astype(np.int64).ravel().tolist()
    if axes is None or sorted(int(v) % 4 for v in axes) != [2, 3]:
        raise _Unsupported(f"axes {axes}: only the mean over H and W (2, 3) is supported")
    b.emit("MEAN", node, [x], node.output[0],
           {"axes": (1, 2), "keep_dims": bool(a.get("keepdims", 1))})


def _reshape(b: _Builder, i: int, node: onnx.NodeProto) -> None:
    """Flatten/Reshape/Squeeze/Unsqueeze: a RESHAPE when NCHW and NHWC element orders agree on
    both sides, or a flatten of NCHW to [N, C*H*W] that only Gemm/MatMul readers may follow."""
    x = b.activation(node.input[0])
    src, dst = b.shape(x), b.shape(node.output[0])
    out = node.output[0]
    if not _order_agrees(src):
        if len(dst) != 2 or dst[0] != src[0]:
            raise _Unsupported(f"reshaping NCHW {src} to {dst} depends on the memory order")
        readers = [b.nodes[j] for j in b.consumers.get(b.name(out), [])]
        others = [f"{n.op_type} ({n.name})" for n in readers if n.op_type not in ("Gemm",
                                                                                   "MatMul")]
        if others or b.name(out) in b.graph_outputs:
            where = ", ".join(others) or "the graph output"
            raise _Unsupported(f"flattening NCHW {src} gives CHW order where the engine holds "
                               f"HWC, which only a Gemm/MatMul can absorb, but it feeds {where}")
        b.chw_flattened[out] = (src[1], src[2], src[3])
    elif not _order_agrees(dst):
        raise _Unsupported(f"reshaping {src} to NCHW {dst} depends on the memory order")
    b.emit("RESHAPE", node, [x], out, {})


def _pad(b: _Builder, i: int, node: onnx.NodeProto) -> None:
    a = _attrs(node)
    x = b.activation(node.input[0])
    if a.get("mode", "constant") != "constant":
        raise _Unsupported(f"mode {a['mode']}: only constant padding is supported")
    if len(node.input) > 3 and node.input[3]:
        raise _Unsupported("the axes input is not supported")
    if len(node.input) > 2 and node.input[2] and np.any(b.const(node.input[2], "value") != 0):
        raise _Unsupported("only padding with 0 is supported")
    pads = a.get("pads") if len(node.input) < 2 or not node.input[1] else \
        b.const(node.input[1], "pads").astype(np.int64).tolist()
    rank = len(b.shape(x))
    if pads is None or len(pads) != 2 * rank or min(pads) < 0:
        raise _Unsupported(f"pads {pads}: need {2 * rank} non-negative values")
    order = (0, 2, 3, 1) if rank == 4 else tuple(range(rank))
    b.emit("PAD", node, [x], node.output[0],
           {"paddings": [(int(pads[d]), int(pads[d + rank])) for d in order]})


def _softmax(b: _Builder, i: int, node: onnx.NodeProto) -> None:
    x = b.activation(node.input[0])
    shape = b.shape(x)
    rank = len(shape)
    # Before opset 13 Softmax flattened everything from `axis` on, and axis defaulted to 1.
    axis = int(_attrs(node).get("axis", -1 if b.opset >= 13 else 1)) % rank
    # NCHW's channel axis is the IR's last axis; any other tensor keeps its axes.
    channel = 1 if rank == 4 else rank - 1
    if axis != channel or (b.opset < 13 and int(np.prod(shape[axis + 1:])) != 1):
        raise _Unsupported(f"axis {axis} (opset {b.opset}): only a softmax over channels (the "
                           "engine's last axis) is supported")
    b.emit("SOFTMAX", node, [x], node.output[0], {"beta": 1.0})


_Converter = Callable[[_Builder, int, onnx.NodeProto], None]

_CONVERTERS: dict[str, _Converter] = {
    "Conv": _conv, "Gemm": _gemm, "MatMul": _matmul, "Add": _add,
    "AveragePool": _pool, "MaxPool": _pool, "GlobalAveragePool": _global_average_pool,
    "ReduceMean": _reduce_mean,
    "Flatten": _reshape, "Reshape": _reshape, "Squeeze": _reshape, "Unsqueeze": _reshape,
    "Pad": _pad, "Softmax": _softmax,
    # Reached only when the fusion after a Conv/Gemm/Add/pool did not absorb them.
    "BatchNormalization": _unfusable, "Relu": _unfusable, "Clip": _unfusable,
}
