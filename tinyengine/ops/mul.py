"""MUL: int8 or int16 element-wise multiplication with numpy-style broadcasting (4-D; any rank
if equal).

Reference semantics: TFLM's mul.cc / mul_common.cc with reference_integer_ops::MulElementwise
and BroadcastMul6DSlow:
  (M, s) = QuantizeMultiplier(double(s_1) * double(s_2) / double(s_out))
  y = clamp(MultiplyByQuantizedMultiplier((x_1 - zp_1) * (x_2 - zp_2), M, s) + zp_out)
The product of two offset int8 values is at most 255 * 255 < 2^16, so we accept s <= 15
(a real multiplier below 2^15), where the left shift cannot overflow int32.

int16 (TFLite's 16x8 mode): mul_common.cc runs the same MulElementwise / BroadcastMul6DSlow on
int16 operands, and insists on zero points of 0 for both inputs and the output. The product of
two int16 values reaches 2^30 ((-32768)^2), so only s <= 0 (a real multiplier below 1) keeps
the shift inside int32; a larger one is refused. Results clamp to the int16 range (and the fused
activation's limits in int16 units).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import quant
from ..errors import UnsupportedError
from ..ir import Graph, Op, Tensor
from .base import OpEmission, QuantRule, TfliteImport, TfliteLowering, register
from .common import (
    SUFFIX,
    act_limits,
    activation_options_import,
    activation_options_lowering,
    clamp_to,
)
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

MAX_SHIFT = 15  # 255 * 255 << 15 < 2^31
MAX_SHIFT_INT16 = 0  # (-32768)^2 = 2^30: no left shift fits every product


def max_shift_for(dtype: str) -> int:
    return MAX_SHIFT_INT16 if dtype == "int16" else MAX_SHIFT


def mul_multiplier(a: Tensor, b: Tensor, out: Tensor) -> tuple[int, int]:
    """CalculateOpDataMul's multiplier: the three float32 scales multiplied in double."""
    return quant.quantize_multiplier(float(np.float64(a.scale) * np.float64(b.scale)
                                           / np.float64(out.scale)))


@register
class Mul(BinaryElementwise):
    kind = "MUL"
    dtypes = ("int8", "int16")
    fused_activation = True
    onnx_types = ("Mul",)

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        # s1 * s2 / s_out < 2^15, or < 1 for int16 (only an output range far below the
        # product's breaks it).
        limit = 1 << max_shift_for(graph.tensor(op.outputs[0]).dtype)
        return QuantRule(const_operands=True,
                         output_scale_floor=lambda s: s[0] * s[1] / limit * 1.01)

    def check_quant(self, graph: Graph, op: Op) -> None:
        a, b, o = (graph.tensor(n) for n in (*op.inputs, op.outputs[0]))
        limit = max_shift_for(o.dtype)
        if mul_multiplier(a, b, o)[1] > limit:
            raise UnsupportedError(
                f"{where(op)}: output {o.name} scale {o.scale:g} is too small for input scales "
                f"{a.scale:g} and {b.scale:g} (s1 * s2 / s_out must be below 2^{limit} for "
                f"{o.dtype})")

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        a, b, o = (graph.tensor(n) for n in (*op.inputs, op.outputs[0]))
        x1, x2 = broadcast_inputs(graph, op, inputs)
        mult, shift = mul_multiplier(a, b, o)
        prod = (x1 - a.zero_point) * (x2 - b.zero_point)
        y = quant.multiply_by_quantized_multiplier(prod, mult, shift) + o.zero_point
        lo, hi = act_limits(op, o)
        return [clamp_to(y, o, lo, hi).reshape(o.shape)]

    def kernel(self, graph: Graph, op: Op) -> str:
        return f"te_mul_{SUFFIX[graph.tensor(op.outputs[0]).dtype]}"

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        a, b, o = (graph.tensor(n) for n in (*op.inputs, op.outputs[0]))
        mult, shift = mul_multiplier(a, b, o)
        lo, hi = act_limits(op, o)
        return self.emission(graph, op, "te_mul_params_t", {
            "input1_offset": -a.zero_point, "input2_offset": -b.zero_point,
            "output_multiplier": mult, "output_shift": shift,
            "output_offset": o.zero_point,
            "act_min": lo, "act_max": hi,
        })

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        return activation_options_import(operator, "MulOptions", inputs)

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        return activation_options_lowering(fb, op, "MulOptions")

    def from_onnx(self, b: OnnxBuilder, i: int, node: NodeProto) -> None:
        binary_from_onnx(self, b, node)

    def to_qdq(self, b: QdqBuilder, op: Op) -> str:
        return b.node("Mul", qdq_operands(b, op), op.name)
