"""Interop out: the engine's int8 graph as an ONNX QDQ model, in the source model's own layout.

Every int8 activation T becomes QuantizeLinear(float value) -> T -> DequantizeLinear -> T/dq, with
T's scale and zero point; weights are int8 initializers behind a per-axis DequantizeLinear (in
ONNX's layouts again: Conv OIHW, depthwise (C*m, 1, H, W), Gemm [out, in] with transB), biases
int32 initializers behind a DequantizeLinear at s_in * s_w. Between them sit the float ops the
int8 kernels implement, in NCHW: TFLite's SAME padding becomes explicit pads (the odd pixel
bottom/right), average pooling excludes padding (count_include_pad=0), fused activations become
Relu / Clip. The model's inputs and outputs keep their names, layouts and float32 type, so it
runs on the same inputs as the source model.

onnxruntime executes such a model either as written (every op in float, rounding at each
QuantizeLinear, half to even) or, with its graph optimisations, fused into integer kernels
(QLinearConv and friends) that requantise with a float multiplier. Neither is bit-exact with
TFLite's fixed-point requantisation; `compare_with_onnxruntime` measures how far apart they are.

`float_onnx_model` runs the same hooks on a float graph (every "dequantized" value is the float
tensor itself): a float ONNX model of a float TFLite model, which calibration executes to observe
every tensor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import TinyEngineError, UnsupportedError
from ..ir import Graph, Op, QuantParams, Tensor
from ..ops import get_op, implements
from ..ops.common import window_padding

OPSET = 17
IR_VERSION = 8  # opset 17's minimum; old enough for every onnxruntime that runs opset 17
NCHW = (0, 3, 1, 2)  # NHWC -> NCHW
NHWC = (0, 2, 3, 1)  # NCHW -> NHWC
_ONNX_DTYPE = {"int8": TensorProto.INT8, "int32": TensorProto.INT32,
               "float32": TensorProto.FLOAT}


class LayoutInfo(Protocol):
    """What the export needs of the frontend's FloatModel."""

    input_layouts: dict[str, str]
    output_layouts: dict[str, str]
    source: str


def _onnx_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Internal convention: 4-D activations are NCHW in the ONNX model, others as in the IR."""
    return tuple(shape[i] for i in NCHW) if len(shape) == 4 else tuple(shape)


def _to_onnx_layout(data: np.ndarray) -> np.ndarray:
    return data.transpose(NCHW) if data.ndim == 4 else data


class QdqBuilder:
    """The QDQ model under construction; ops' `to_qdq` hooks add their float nodes through it."""

    def __init__(self, graph: Graph, layouts: LayoutInfo):
        self.graph = graph
        self.layouts = layouts
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.used: set[str] = set(graph.tensors)
        self.dq_cache: dict[str, str] = {}

    def fresh(self, base: str) -> str:
        name, i = base, 1
        while name in self.used:
            name, i = f"{base}_{i}", i + 1
        self.used.add(name)
        return name

    def const(self, base: str, array: np.ndarray) -> str:
        name = self.fresh(base)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op_type: str, inputs: Sequence[str], base: str, output: str | None = None,
             **attrs: Any) -> str:
        out = output if output is not None else self.fresh(base)
        self.nodes.append(helper.make_node(op_type, list(inputs), [out],
                                           name=self.fresh(f"{base}/{op_type}"), **attrs))
        return out

    def qparams(self, base: str, q: QuantParams, dtype: type) -> tuple[str, str]:
        """Scale and zero-point initializers: scalars per tensor, vectors per axis."""
        if q.per_channel:
            return (self.const(f"{base}/scale", q.scale.astype(np.float32)),
                    self.const(f"{base}/zero_point", q.zero_point.astype(dtype)))
        return (self.const(f"{base}/scale", np.array(q.scale[0], np.float32)),
                self.const(f"{base}/zero_point", np.array(q.zero_point[0], dtype)))

    def quantize(self, float_name: str, ir_name: str) -> str:
        t = self.graph.tensor(ir_name)
        assert t.quant is not None
        scale, zp = self.qparams(ir_name, t.quant, np.int8)
        return self.node("QuantizeLinear", [float_name, scale, zp], ir_name, output=ir_name)

    def dequantized(self, ir_name: str) -> str:
        """The float value (ONNX layout) of an int8 activation or constant of the IR graph."""
        if ir_name in self.dq_cache:
            return self.dq_cache[ir_name]
        t = self.graph.tensor(ir_name)
        assert t.quant is not None and not t.quant.per_channel, ir_name
        if t.data is not None:  # an int8 constant operand (ADD)
            return self.const_dq(t, _to_onnx_layout(t.data), 0, np.int8)
        scale, zp = self.qparams(ir_name, t.quant, np.int8)
        out = self.node("DequantizeLinear", [ir_name, scale, zp], f"{ir_name}/dq")
        self.dq_cache[ir_name] = out
        return out

    def const_dq(self, t: Tensor, data: np.ndarray, axis: int, dtype: type) -> str:
        """A quantised weight or bias initializer (already in ONNX layout, under the IR name)
        behind its DQ; once per constant, however many ops read it."""
        assert t.quant is not None
        if t.name not in self.dq_cache:
            self.inits.append(numpy_helper.from_array(np.asarray(data), t.name))
            scale, zp = self.qparams(t.name, t.quant, dtype)
            attrs: dict[str, Any] = {"axis": axis} if t.quant.per_channel else {}
            self.dq_cache[t.name] = self.node("DequantizeLinear", [t.name, scale, zp],
                                              f"{t.name}/dq", **attrs)
        return self.dq_cache[t.name]

    def shape_const(self, shape: Sequence[int]) -> str:
        return self.const("shape", np.array(list(shape), np.int64))


def window_pads(op: Op, graph: Graph, fh: int, fw: int) -> list[int]:
    """ONNX pads [top, left, bottom, right] of TFLite's SAME/VALID geometry."""
    x = graph.tensor(op.inputs[0])
    ih, iw = x.shape[1], x.shape[2]
    oh, ow, ph, pw = window_padding(op, ih, iw, fh, fw)
    sh, sw = op.attrs["stride"]
    dh, dw = op.attrs.get("dilation", (1, 1))
    pb = max((oh - 1) * sh + (fh - 1) * dh + 1 - ih - ph, 0)
    pr = max((ow - 1) * sw + (fw - 1) * dw + 1 - iw - pw, 0)
    return [ph, pw, pb, pr]


def bias_inputs(b: QdqBuilder, op: Op) -> list[str]:
    if len(op.inputs) < 3 or not op.inputs[2]:
        return []
    t = b.graph.tensor(op.inputs[2])
    assert t.data is not None
    return [b.const_dq(t, t.data, 0, np.int32)]


_CLIPS = {"RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}


def _activation(b: QdqBuilder, op: Op, v: str) -> str:
    act = op.attrs.get("activation", "NONE")
    if act == "RELU":
        return b.node("Relu", [v], op.name)
    if act in _CLIPS:
        lo, hi = _CLIPS[act]
        return b.node("Clip", [v, b.const("clip_min", np.array(lo, np.float32)),
                               b.const("clip_max", np.array(hi, np.float32))], op.name)
    return v


def boundary(b: QdqBuilder, op: Op) -> None:
    """QUANTIZE of a graph input (float, in the source model's layout) and DEQUANTIZE to a
    graph output; int8 -> int8 QUANTIZE is a DQ/Q pair."""
    x, out = b.graph.tensor(op.inputs[0]), b.graph.tensor(op.outputs[0])
    if op.kind == "QUANTIZE" and x.dtype == "float32":
        v = x.name
        if len(x.shape) == 4 and b.layouts.input_layouts.get(x.name) != "NCHW":
            v = b.node("Transpose", [v], op.name, perm=list(NCHW))
        b.quantize(v, out.name)
    elif op.kind == "QUANTIZE":
        b.quantize(b.dequantized(x.name), out.name)
    else:
        v = b.dequantized(x.name)
        keep_nchw = b.layouts.output_layouts.get(out.name) == "NCHW"
        if len(out.shape) == 4 and not keep_nchw:
            v = b.node("Transpose", [v], op.name, perm=list(NHWC))
        b.node("Identity", [v], op.name, output=out.name)


def _io_info(b: QdqBuilder, name: str, is_input: bool) -> onnx.ValueInfoProto:
    t = b.graph.tensor(name)
    layouts = b.layouts.input_layouts if is_input else b.layouts.output_layouts
    shape = _onnx_shape(t.shape) if layouts.get(name) == "NCHW" else t.shape
    return helper.make_tensor_value_info(name, _ONNX_DTYPE[t.dtype], list(shape))


def qdq_model(int8_graph: Graph, model: LayoutInfo) -> onnx.ModelProto:
    """The ONNX QDQ model of `int8_graph` (from quantize_model), checked by onnx.checker."""
    b = QdqBuilder(int8_graph, model)
    unsupported = sorted({op.kind for op in int8_graph.ops
                          if not implements(get_op(op.kind), "to_qdq")})
    if unsupported:
        raise UnsupportedError(f"QDQ export does not cover op kinds {', '.join(unsupported)}")
    for n in (*int8_graph.inputs, *int8_graph.outputs):
        if int8_graph.tensor(n).dtype != "float32":
            raise UnsupportedError(f"QDQ export needs float32 graph inputs and outputs; {n} is "
                                   f"{int8_graph.tensor(n).dtype}")
    for op in int8_graph.ops:
        if op.kind in ("QUANTIZE", "DEQUANTIZE"):
            boundary(b, op)
            continue
        values = get_op(op.kind).to_qdq(b, op)
        for v, out in zip([values] if isinstance(values, str) else values, op.outputs):
            b.quantize(_activation(b, op, v), out)
    graph = helper.make_graph(
        b.nodes, int8_graph.name or "model",
        [_io_info(b, n, True) for n in int8_graph.inputs],
        [_io_info(b, n, False) for n in int8_graph.outputs], initializer=b.inits,
        doc_string=f"int8 quantisation of {model.source} by tinyengine (QDQ form of the "
                   "deployed graph; the C code requantises in TFLite's fixed point)")
    m = helper.make_model(graph, producer_name="tinyengine", ir_version=IR_VERSION,
                          opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(m, full_check=True)
    return m


# ---------------------------------------------------------------------------------------------
# The float graph as a float ONNX model (for calibrating a float source without one, e.g. TFLite)
# ---------------------------------------------------------------------------------------------


@dataclass
class _NoLayouts:
    """The float export reads and writes the IR's own layout: no source layouts to restore."""

    input_layouts: dict[str, str]
    output_layouts: dict[str, str]
    source: str


class FloatBuilder(QdqBuilder):
    """The same ops' `to_qdq` hooks, on a float graph: every tensor is its own float value.

    An activation T of the float graph is the ONNX tensor named T (4-D in NCHW, the hooks'
    convention; a 4-D graph input, fed in the IR's NHWC, is transposed once); constants are float
    initializers. So the float ONNX model computes exactly what the int8 QDQ export describes,
    less the rounding: the ops' own float semantics, written once, in the hooks.
    """

    def dequantized(self, ir_name: str) -> str:
        if ir_name in self.dq_cache:
            return self.dq_cache[ir_name]
        t = self.graph.tensor(ir_name)
        if t.data is not None:  # a float constant operand (ADD, PRELU's slope)
            return self.const_dq(t, _to_onnx_layout(t.data), 0, np.float32)
        if ir_name in self.graph.inputs and len(t.shape) == 4:
            self.dq_cache[ir_name] = self.node("Transpose", [ir_name], ir_name, perm=list(NCHW))
            return self.dq_cache[ir_name]
        return ir_name

    def const_dq(self, t: Tensor, data: np.ndarray, axis: int, dtype: type) -> str:
        if t.name not in self.dq_cache:
            self.dq_cache[t.name] = self.const(t.name, np.asarray(data, np.float32))
        return self.dq_cache[t.name]


def float_onnx_model(float_graph: Graph) -> onnx.ModelProto:
    """A float IR graph (NHWC activations, TFLite weight layouts, no quantisation) as a float
    ONNX model whose outputs are every activation of the graph, named as in the graph (4-D ones
    in NCHW), and whose inputs are the graph's inputs in the IR's layout. Calibration runs it
    where the source model cannot give those values itself (a float TFLite model)."""
    b = FloatBuilder(float_graph, _NoLayouts({}, {}, float_graph.name))
    unsupported = sorted({op.kind for op in float_graph.ops
                          if op.kind in ("QUANTIZE", "DEQUANTIZE")
                          or not implements(get_op(op.kind), "to_qdq")})
    if unsupported:
        raise UnsupportedError(f"the float export does not cover op kinds {', '.join(unsupported)}")
    for op in float_graph.ops:
        values = get_op(op.kind).to_qdq(b, op)
        for v, out in zip([values] if isinstance(values, str) else values, op.outputs):
            b.node("Identity", [_activation(b, op, v)], op.name, output=out)
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(float_graph.tensor(n).shape))
              for n in float_graph.inputs]
    outputs = [helper.make_tensor_value_info(t.name, TensorProto.FLOAT, list(_onnx_shape(t.shape)))
               for t in float_graph.activations() if t.name not in float_graph.inputs]
    graph = helper.make_graph(b.nodes, float_graph.name or "model", inputs, outputs,
                              initializer=b.inits)
    m = helper.make_model(graph, producer_name="tinyengine", ir_version=IR_VERSION,
                          opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(m, full_check=True)
    return m


def export_qdq(int8_graph: Graph, model: LayoutInfo, path: str | Path) -> None:
    """Write the QDQ model of `int8_graph` to `path` (see `qdq_model`)."""
    m = qdq_model(int8_graph, model)
    try:
        onnx.save(m, str(path))
    except OSError as e:
        raise TinyEngineError(f"cannot write the QDQ model to {path}: {e.strerror}") from None


# ---------------------------------------------------------------------------------------------
# How closely onnxruntime agrees with the engine's integer arithmetic
# ---------------------------------------------------------------------------------------------


@dataclass
class QdqAgreement:
    """int8 outputs of onnxruntime on the QDQ model against the engine's reference."""

    values: int  # int8 output values compared
    identical: float  # fraction exactly equal
    max_abs_diff: int  # in int8 steps
    diff_histogram: dict[int, int]  # |difference| -> count


def _int8_of(y: np.ndarray, q: QuantParams) -> np.ndarray:
    """The int8 values behind a dequantised output (exact: y = scale * (q - zp) in float)."""
    return np.rint(np.asarray(y, np.float64) / np.float64(q.scale[0])).astype(np.int64) \
        + int(q.zero_point[0])


def _session(qdq: onnx.ModelProto, optimized: bool) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimized
                                     else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    return ort.InferenceSession(qdq.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


def _agreement(diffs: list[np.ndarray]) -> QdqAgreement:
    d = np.abs(np.concatenate(diffs)) if diffs else np.zeros(0, np.int64)
    values, counts = np.unique(d, return_counts=True)
    return QdqAgreement(int(d.size), float(np.mean(d == 0)) if d.size else 1.0,
                        int(d.max(initial=0)), {int(v): int(c) for v, c in zip(values, counts)})


def _ir_input(model: LayoutInfo, name: str, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x.transpose(NHWC) if model.input_layouts.get(name) == "NCHW" else x


def compare_with_onnxruntime(int8_graph: Graph, model: LayoutInfo, qdq: onnx.ModelProto,
                             inputs: Sequence[np.ndarray], optimized: bool = True
                             ) -> QdqAgreement:
    """Run `inputs` (one sample each, in the source model's layout, for a single-input model)
    through onnxruntime on `qdq` and through the reference on `int8_graph`; compare the int8
    outputs. `optimized` lets onnxruntime fuse QDQ groups into its integer kernels."""
    from ..reference import run_reference

    sess = _session(qdq, optimized)
    name = int8_graph.inputs[0]
    out_q = _output_quant(int8_graph)
    diffs: list[np.ndarray] = []
    for x in inputs:
        ours = run_reference(int8_graph, [_ir_input(model, name, x)])
        theirs = sess.run(None, {name: np.asarray(x, np.float32)})
        for out_name, a, t in zip(int8_graph.outputs, ours, theirs):
            if model.output_layouts.get(out_name) == "NCHW" and t.ndim == 4:
                t = t.transpose(NHWC)
            q = out_q[out_name]
            diffs.append((_int8_of(a, q) - _int8_of(t.reshape(a.shape), q)).ravel())
    return _agreement(diffs)


def compare_per_op(int8_graph: Graph, model: LayoutInfo, qdq: onnx.ModelProto,
                   inputs: Sequence[np.ndarray]) -> dict[str, QdqAgreement]:
    """Op kind -> agreement of each op in isolation: the reference op is fed onnxruntime's own
    int8 inputs (the QDQ model run as written, every int8 tensor exposed), so differences do
    not accumulate through the network."""
    from ..ops import get_op

    exposed = onnx.ModelProto()
    exposed.CopyFrom(qdq)
    int8 = [t.name for t in int8_graph.activations() if t.dtype == "int8"]
    for n in int8:
        exposed.graph.output.append(helper.make_tensor_value_info(n, TensorProto.INT8, None))
    sess = _session(exposed, optimized=False)
    names = [o.name for o in sess.get_outputs()]
    diffs: dict[str, list[np.ndarray]] = {}
    for x in inputs:
        got = dict(zip(names, sess.run(None, {int8_graph.inputs[0]: np.asarray(x, np.float32)})))
        ort_int8 = {n: (got[n].transpose(NHWC) if got[n].ndim == 4 else got[n]) for n in int8}
        for op in int8_graph.ops:
            if op.kind in ("QUANTIZE", "DEQUANTIZE"):
                continue
            args = [None if not n else ort_int8[n] if n in ort_int8
                    else int8_graph.tensor(n).data for n in op.inputs]
            ours = get_op(op.kind).reference(int8_graph, op, args)[0]  # type: ignore[arg-type]
            theirs = ort_int8[op.outputs[0]].reshape(ours.shape)
            diffs.setdefault(op.kind, []).append(
                (ours.astype(np.int64) - theirs.astype(np.int64)).ravel())
    return {kind: _agreement(d) for kind, d in sorted(diffs.items())}


def _output_quant(graph: Graph) -> Mapping[str, QuantParams]:
    """Graph output -> the quantisation of the int8 tensor its DEQUANTIZE reads."""
    out: dict[str, QuantParams] = {}
    for op in graph.ops:
        if op.kind == "DEQUANTIZE" and op.outputs[0] in graph.outputs:
            q = graph.tensor(op.inputs[0]).quant
            assert q is not None
            out[op.outputs[0]] = q
    return out
