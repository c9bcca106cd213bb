"""SQUARED_DIFFERENCE: int8 (x_1 - x_2)^2 with numpy-style broadcasting (4-D; any rank if equal).

Reference semantics: TFLM's squared_difference.cc (PrepareQuantized with left_shift 7, and its
SquaredDifference applied through ElementWise / BroadcastBinaryFunction4DSlow). Both inputs go to
a common scale of twice the larger input scale with 7 bits of headroom, are subtracted, and the
square is rescaled to the output:
  s_k = MultiplyByQuantizedMultiplierSmallerThanOneExp((x_k - zp_k) << 7, M_k, sh_k)
  y   = clamp(MultiplyByQuantizedMultiplier((s_1 - s_2)^2, M_out, sh_out) + zp_out, -128, 127)
with M_k from s_k / (2 max s) and M_out from (2 max s)^2 / (2^14 s_out), in double (the 2^14 * s_out
product in float32, exact). There is no fused activation. |s_1 - s_2| <= 255 << 7, so the square
is below 2^30; we accept sh_out <= 1 (a real multiplier below 2), where its left shift cannot
overflow int32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import quant
from ..errors import UnsupportedError
from ..ir import Graph, Op, Tensor
from .base import OpEmission, QuantRule, TfliteImport, TfliteLowering, register
from .common import clamp_int8, tflite_import
from .elementwise import (
    BinaryElementwise,
    broadcast_inputs,
    qdq_operands,
    where,
)
from .sub import scale_input

if TYPE_CHECKING:
    from types import ModuleType

    from ..quantize.qdq import QdqBuilder

LEFT_SHIFT = 7  # 255^2 * 2^14 < 2^31
MAX_OUTPUT_SHIFT = 1


@dataclass
class SquaredDifferenceRescale:
    input1: tuple[int, int]  # (multiplier, shift <= 0)
    input2: tuple[int, int]
    output: tuple[int, int]  # QuantizeMultiplier: the shift may be positive


def squared_difference_rescale(a: Tensor, b: Tensor, out: Tensor) -> SquaredDifferenceRescale:
    twice_max = 2.0 * float(max(np.float32(a.scale), np.float32(b.scale)))
    denom = float(np.float32(1 << (2 * LEFT_SHIFT)) * np.float32(out.scale))
    return SquaredDifferenceRescale(quant.quantize_multiplier(a.scale / twice_max),
                                    quant.quantize_multiplier(b.scale / twice_max),
                                    quant.quantize_multiplier(twice_max * twice_max / denom))


@register
class SquaredDifference(BinaryElementwise):
    kind = "SQUARED_DIFFERENCE"
    # No single ONNX node is a squared difference: nothing to import (to_qdq emits Sub, Mul).
    not_applicable = BinaryElementwise.not_applicable | {"from_onnx"}

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        # (2 * max input scale)^2 / (2^14 * s_out) < 2^MAX_OUTPUT_SHIFT.
        limit = 1 << (2 * LEFT_SHIFT + MAX_OUTPUT_SHIFT)
        return QuantRule(const_operands=True,
                         output_scale_floor=lambda s: (2.0 * max(s)) ** 2 / limit * 1.01)

    def check_quant(self, graph: Graph, op: Op) -> None:
        a, b, o = (graph.tensor(n) for n in (*op.inputs, op.outputs[0]))
        if squared_difference_rescale(a, b, o).output[1] > MAX_OUTPUT_SHIFT:
            raise UnsupportedError(
                f"{where(op)}: output {o.name} scale {o.scale:g} is too small for input scales "
                f"{a.scale:g} and {b.scale:g} ((2 * max input scale)^2 / (2^14 * output scale) "
                "must be below 2)")

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        a, b, o = (graph.tensor(n) for n in (*op.inputs, op.outputs[0]))
        x1, x2 = broadcast_inputs(graph, op, inputs)
        r = squared_difference_rescale(a, b, o)
        diff = (scale_input(x1, a.zero_point, r.input1, LEFT_SHIFT)
                - scale_input(x2, b.zero_point, r.input2, LEFT_SHIFT))
        y = quant.multiply_by_quantized_multiplier(diff * diff, *r.output) + o.zero_point
        return [clamp_int8(y, -128, 127).reshape(o.shape)]

    def kernel(self, graph: Graph, op: Op) -> str:
        return "te_squared_difference_s8"

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        a, b, o = (graph.tensor(n) for n in (*op.inputs, op.outputs[0]))
        r = squared_difference_rescale(a, b, o)
        return self.emission(graph, op, "te_squared_difference_params_t", {
            "input1": [-a.zero_point, r.input1[0], r.input1[1]],
            "input2": [-b.zero_point, r.input2[0], r.input2[1]],
            "left_shift": LEFT_SHIFT,
            "output_multiplier": r.output[0], "output_shift": r.output[1],
            "output_offset": o.zero_point,
            "act_min": -128, "act_max": 127,
        })

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        return tflite_import({}, 2, inputs)

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        return TfliteLowering("SquaredDifferenceOptions", fb.SquaredDifferenceOptionsT())

    def to_qdq(self, b: QdqBuilder, op: Op) -> str:
        diff = b.node("Sub", qdq_operands(b, op), op.name)
        return b.node("Mul", [diff, diff], op.name)
