"""MAXIMUM and MINIMUM: element-wise max / min of two int8 tensors, with numpy-style broadcasting
(4-D; any rank if equal).

Reference semantics: TFLM's maximum_minimum.cc (reference_ops::MaximumMinimumBroadcastSlow):
the raw int8 values are compared and the winner is copied, with no requantisation. That is the
max / min of the real values only when both inputs and the output share one scale and zero
point, which TFLite's converter guarantees; `check` insists on it and `quant_rule` asks for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UnsupportedError
from ..ir import Graph, Op
from .base import OpEmission, QuantRule, TfliteImport, TfliteLowering, register
from .common import tflite_import
from .elementwise import (
    BinaryElementwise,
    binary_from_onnx,
    broadcast_inputs,
    qdq_operands,
    where,
)

if TYPE_CHECKING:
    from types import ModuleType

    from onnx import NodeProto

    from ..frontend.onnx_ops import OnnxBuilder
    from ..quantize.qdq import QdqBuilder


class _MaxMin(BinaryElementwise):
    onnx_op = ""  # "Max" / "Min"
    numpy_op: Any = None

    def check_quant(self, graph: Graph, op: Op) -> None:
        o = graph.tensor(op.outputs[0])
        for n in op.inputs:
            t = graph.tensor(n)
            if t.scale != o.scale or t.zero_point != o.zero_point:
                raise UnsupportedError(
                    f"{where(op)}: input {t.name} (scale {t.scale:g}, zero point "
                    f"{t.zero_point}) and output {o.name} (scale {o.scale:g}, zero point "
                    f"{o.zero_point}) must share one quantisation; {op.kind} does not rescale")

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        out = op.outputs[0]
        return QuantRule(share=[(op.inputs[0], out), (op.inputs[1], out)], const_operands=True)

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x1, x2 = broadcast_inputs(graph, op, inputs)
        return [self.numpy_op(x1, x2).astype(np.int8)]

    def kernel(self, graph: Graph, op: Op) -> str:
        return f"te_{self.kind.lower()}_s8"

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        return self.emission(graph, op, "te_max_min_params_t", {})

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        return tflite_import({}, 2, inputs)

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        return TfliteLowering("MaximumMinimumOptions", fb.MaximumMinimumOptionsT())

    def from_onnx(self, b: OnnxBuilder, i: int, node: NodeProto) -> None:
        binary_from_onnx(self, b, node)

    def to_qdq(self, b: QdqBuilder, op: Op) -> str:
        return b.node(self.onnx_op, qdq_operands(b, op), op.name)


@register
class Maximum(_MaxMin):
    kind = "MAXIMUM"
    onnx_types = ("Max",)
    onnx_op = "Max"
    numpy_op = staticmethod(np.maximum)


@register
class Minimum(_MaxMin):
    kind = "MINIMUM"
    onnx_types = ("Min",)
    onnx_op = "Min"
    numpy_op = staticmethod(np.minimum)
