"""SUB: int8 or int16 element-wise subtraction with numpy-style broadcasting (4-D; any rank if
equal).

Reference semantics: TFLM's sub.cc / sub_common.cc with reference_ops::SubElementwise and
BroadcastQuantSubSlow. It is ADD's arithmetic with the scaled second input subtracted: both
inputs go to a common scale of twice the larger input scale with 20 bits of headroom, are
subtracted, and the difference is rescaled to the output (double rounding, as TFLM builds).
The multipliers are ADD's (`add.add_rescale`), computed in double. TFLM's sub_common.cc source
(as of its Aug 2026 tree) divides in float32 before widening, but the installed tflite-micro
(0.dev20261023) gives the double results: tests/test_ops_elementwise.py pins a case where the
two differ, against TFLM itself.

int16 (symmetric): the same arithmetic with 15 bits of headroom instead of 20, as ADD. TFLite's
reference sub.h also has a power-of-two int16 path (BroadcastSub16POTSlow), which TFLM's sub.cc
never calls: its int16 SUB is always SubElementwise / BroadcastQuantSubSlow with left_shift 15.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import quant
from ..errors import UnsupportedError
from ..ir import Graph, Op, Tensor
from .add import AddRescale, add_rescale, left_shift_for
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

LEFT_SHIFT = 20  # TFLM's headroom for int8 inputs (15 for int16: add.left_shift_for)


def sub_rescale(a: Tensor, b: Tensor, out: Tensor) -> AddRescale:
    """CalculateOpDataSub's multipliers: ADD's, QuantizeMultiplierSmallerThanOneExp in double."""
    return add_rescale(a, b, out)


def real_output_multiplier(a: Tensor, b: Tensor, out: Tensor) -> float:
    return 2.0 * max(a.scale, b.scale) / ((1 << left_shift_for(out.dtype)) * out.scale)


def scale_input(x: np.ndarray, zero_point: int, mult_shift: tuple[int, int],
                left_shift: int) -> np.ndarray:
    """((x - zp) << left_shift) rescaled by a multiplier below one (TFLite's ADD/SUB)."""
    # |x - zp| << shift is at most 255 << 20 (int8) or 32768 << 15 (int16): inside int32.
    shifted = (x.astype(np.int64) - zero_point) << left_shift
    return quant.multiply_by_quantized_multiplier_smaller_than_one_exp(shifted, *mult_shift)


@register
class Sub(BinaryElementwise):
    kind = "SUB"
    dtypes = ("int8", "int16")
    fused_activation = True
    onnx_types = ("Sub",)

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        # As ADD: 2 * max(input scales) < 2^20 (int16: 2^15) * output scale.
        shift = left_shift_for(graph.tensor(op.outputs[0]).dtype)
        return QuantRule(const_operands=True,
                         output_scale_floor=lambda s: 2.0 * max(s) / (1 << shift) * 1.01)

    def check_quant(self, graph: Graph, op: Op) -> None:
        a, b, o = (graph.tensor(n) for n in (*op.inputs, op.outputs[0]))
        if real_output_multiplier(a, b, o) >= 1.0:
            raise UnsupportedError(f"{where(op)}: output {o.name} scale {o.scale:g} is too small "
                                   f"for input scales {a.scale:g} and {b.scale:g} (TFLite needs "
                                   f"2 * max input scale < 2^{left_shift_for(o.dtype)} * output "
                                   "scale)")

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        a, b, o = (graph.tensor(n) for n in (*op.inputs, op.outputs[0]))
        x1, x2 = broadcast_inputs(graph, op, inputs)
        r = sub_rescale(a, b, o)
        shift = left_shift_for(o.dtype)
        diff = (scale_input(x1, a.zero_point, r.input1, shift)
                - scale_input(x2, b.zero_point, r.input2, shift))
        y = quant.multiply_by_quantized_multiplier_smaller_than_one_exp(diff, *r.output)
        lo, hi = act_limits(op, o)
        return [clamp_to(y + o.zero_point, o, lo, hi).reshape(o.shape)]

    def kernel(self, graph: Graph, op: Op) -> str:
        return f"te_sub_{SUFFIX[graph.tensor(op.outputs[0]).dtype]}"

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        a, b, o = (graph.tensor(n) for n in (*op.inputs, op.outputs[0]))
        r = sub_rescale(a, b, o)
        lo, hi = act_limits(op, o)
        return self.emission(graph, op, "te_sub_params_t", {
            "input1": [-a.zero_point, r.input1[0], r.input1[1]],
            "input2": [-b.zero_point, r.input2[0], r.input2[1]],
            "left_shift": left_shift_for(o.dtype),
            "output_multiplier": r.output[0], "output_shift": r.output[1],
            "output_offset": o.zero_point,
            "act_min": lo, "act_max": hi,
        })

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        return activation_options_import(operator, "SubOptions", inputs)

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        return activation_options_lowering(fb, op, "SubOptions")

    def from_onnx(self, b: OnnxBuilder, i: int, node: NodeProto) -> None:
        binary_from_onnx(self, b, node)

    def to_qdq(self, b: QdqBuilder, op: Op) -> str:
        return b.node("Sub", qdq_operands(b, op), op.name)
