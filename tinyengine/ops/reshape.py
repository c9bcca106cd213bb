"""RESHAPE: the same bytes under a new shape (int8 or int16: TFLM copies either's bytes).

The target shape is the output tensor's shape (the frontend drops TFLite's shape input). The C
kernel is a memmove-safe byte copy that does nothing when the planner aliases the two tensors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UnsupportedError
from ..ir import Graph, Op
from .base import Arg, OpDef, OpEmission, QuantRule, TfliteImport, TfliteLowering, register
from .common import (
    CTYPE,
    SUFFIX,
    check_io,
    io_dtype,
    tflite_import,
)

if TYPE_CHECKING:
    from types import ModuleType

    from onnx import NodeProto

    from ..frontend.onnx_ops import OnnxBuilder
    from ..quantize.qdq import QdqBuilder


@register
class Reshape(OpDef):
    kind = "RESHAPE"
    dtypes = ("int8", "int16")
    patch = "none"
    onnx_types = ("Flatten", "Reshape", "Squeeze", "Unsqueeze")
    not_applicable = frozenset({"window", "scratch_bytes", "macs"})

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        return tflite_import({}, 1, inputs)  # the target is the output tensor's shape

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        # The target is the output's shape; TFLite carries it twice (options and a shape tensor).
        shape = [int(d) for d in graph.tensor(op.outputs[0]).shape]
        o = fb.ReshapeOptionsT()
        o.newShape = shape
        return TfliteLowering("ReshapeOptions", o, [np.array(shape, np.int32)])

    def from_onnx(self, b: OnnxBuilder, i: int, node: NodeProto) -> None:
        _reshape_from_onnx(b, i, node)

    def to_qdq(self, b: QdqBuilder, op: Op) -> str:
        return _reshape_to_qdq(b, op)

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        return QuantRule(share=[(op.inputs[0], op.outputs[0])])

    def kernel(self, graph: Graph, op: Op) -> str:
        return f"te_reshape_{SUFFIX[io_dtype(graph, op)]}"


    def check(self, graph: Graph, op: Op) -> None:
        check_io(graph, op, 1, self.dtypes)
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        if x.size != out.size:
            raise UnsupportedError(f"op {op.name} (RESHAPE): input {x.name} {x.shape} and output "
                                   f"{out.name} {out.shape} hold different numbers of elements")
        if x.zero_point != out.zero_point or x.scale != out.scale:
            raise UnsupportedError(
                f"op {op.name} (RESHAPE): input {x.name} and output {out.name} have different "
                "quantisation; a reshape cannot requantise")

    is_view = True  # te_reshape_s8/_s16 do nothing when output == input

    def inplace_inputs(self, graph: Graph, op: Op) -> list[int]:
        return [0]

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        return [tuple(graph.tensor(op.outputs[0]).shape)]

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [inputs[0].reshape(graph.tensor(op.outputs[0]).shape)]

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        ctype = CTYPE[io_dtype(graph, op)]
        return OpEmission(
            kernel=self.kernel(graph, op),
            params_type="te_reshape_params_t",
            params={"size": graph.tensor(op.outputs[0]).nbytes},
            args=[Arg("tensor", op.inputs[0], f"const {ctype}"),
                  Arg("tensor", op.outputs[0], ctype)],
            sources=["te_common.h", "te_reshape.h", "te_reshape.c"],
        )


# -- interop: ONNX import and QDQ export ----------------------------------------------------

def _reshape_from_onnx(b: OnnxBuilder, i: int, node: NodeProto) -> None:
    """Flatten/Reshape/Squeeze/Unsqueeze: a RESHAPE when NCHW and NHWC element orders agree on
    both sides, or a flatten of NCHW to [N, C*H*W] that only Gemm/MatMul readers may follow."""
    from ..frontend import onnx_ops as ox
    x = b.activation(node.input[0])
    src, dst = b.shape(x), b.shape(node.output[0])
    out = node.output[0]
    if not ox.order_agrees(src):
        if len(dst) != 2 or dst[0] != src[0]:
            raise ox.Unsupported(f"reshaping NCHW {src} to {dst} depends on the memory order")
        readers = [b.nodes[j] for j in b.consumers.get(b.name(out), [])]
        others = [f"{n.op_type} ({n.name})" for n in readers if n.op_type not in ("Gemm",
                                                                                   "MatMul")]
        if others or b.name(out) in b.graph_outputs:
            where = ", ".join(others) or "the graph output"
            raise ox.Unsupported(f"flattening NCHW {src} gives CHW order where the engine holds "
                               f"HWC, which only a Gemm/MatMul can absorb, but it feeds {where}")
        b.chw_flattened[out] = (src[1], src[2], src[3])
    elif not ox.order_agrees(dst):
        raise ox.Unsupported(f"reshaping {src} to NCHW {dst} depends on the memory order")
    b.emit("RESHAPE", node, [x], out, {})


def _reshape_to_qdq(b: QdqBuilder, op: Op) -> str:
    from ..quantize import qdq as qx
    x, out = b.graph.tensor(op.inputs[0]), b.graph.tensor(op.outputs[0])
    v = b.dequantized(x.name)
    if len(x.shape) == 4:
        v = b.node("Transpose", [v], op.name, perm=list(qx.NHWC))
    v = b.node("Reshape", [v, b.shape_const(out.shape)], op.name)
    if len(out.shape) == 4:
        v = b.node("Transpose", [v], op.name, perm=list(qx.NCHW))
    return v
