"""LEAKY_RELU on int8 and int16 tensors: y = x for x >= 0, alpha * x below.

Reference semantics: TFLM's leaky_relu.cc (CalculateOpDataLeakyRelu) and
reference_ops::QuantizeLeakyRelu. Two multipliers, from double arithmetic on the float32 values
for int8 and int16 alike, as the installed TFLM computes both (see activations.py on the
ratio):
  identity: QuantizeMultiplier(double(s_in) / double(s_out))
  alpha:    QuantizeMultiplier(double(s_in) * double(alpha) / double(s_out))
With v = x - zp_in, y = zp_out + MultiplyByQuantizedMultiplier(v, identity) for v >= 0, else
+-MultiplyByQuantizedMultiplier(v, |alpha multiplier|) (a negative alpha gives a negative
multiplier, whose magnitude is applied and whose sign is applied afterwards), clamped to the
type's range. TFLM's int16 path (QuantizeLeakyRelu<int16_t>) is the same arithmetic clamped to
[-32768, 32767]; the engine's int16 activations are symmetric (zero points 0).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import quant
from ..errors import UnsupportedError
from ..ir import Graph, Op, Tensor
from .activations import UnaryActivation, check_unary, rescale, scale_ratio, where
from .base import OpEmission, TfliteImport, TfliteLowering, register
from .common import SUFFIX, clamp_to, io_dtype, tflite_import, tflite_options

if TYPE_CHECKING:
    from types import ModuleType

    from onnx import NodeProto

    from ..frontend.onnx_ops import OnnxBuilder
    from ..quantize.qdq import QdqBuilder


def leaky_params(op: Op, x: Tensor, out: Tensor) -> tuple[int, int, int, int]:
    """(identity multiplier, identity shift, alpha multiplier, alpha shift)."""
    alpha = np.float32(op.attrs["alpha"])
    m_id, s_id = rescale(op, scale_ratio(x, out), "identity")
    real_alpha = float(np.float32(x.scale)) * float(alpha) / float(np.float32(out.scale))
    if not np.isfinite(real_alpha):
        raise UnsupportedError(f"{where(op)}: alpha {float(alpha):g} is not finite")
    if real_alpha == 0.0:
        return m_id, s_id, 0, 0
    m_a, s_a = rescale(op, real_alpha, "alpha")
    if m_a == quant.INT32_MIN:
        raise UnsupportedError(f"{where(op)}: alpha {float(alpha):g} rounds to the multiplier "
                               "-2^31, whose magnitude TFLite cannot represent")
    return m_id, s_id, m_a, s_a


@register
class LeakyRelu(UnaryActivation):
    kind = "LEAKY_RELU"
    dtypes = ("int8", "int16")
    onnx_types = ("LeakyRelu",)

    def check(self, graph: Graph, op: Op) -> None:
        x, out = check_unary(graph, op, self.dtypes)
        if "alpha" not in op.attrs:
            raise UnsupportedError(f"{where(op)}: the attribute alpha is missing")
        leaky_params(op, x, out)

    def kernel(self, graph: Graph, op: Op) -> str:
        return f"te_leaky_relu_{SUFFIX[io_dtype(graph, op)]}"

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        m_id, s_id, m_a, s_a = leaky_params(op, x, out)
        v = inputs[0].astype(np.int64) - x.zero_point
        identity = quant.multiply_by_quantized_multiplier(v, m_id, s_id)
        scaled = quant.multiply_by_quantized_multiplier(v, abs(m_a), s_a)
        y = out.zero_point + np.where(v >= 0, identity, -scaled if m_a < 0 else scaled)
        return [clamp_to(y, out).reshape(out.shape)]

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        m_id, s_id, m_a, s_a = leaky_params(op, x, out)
        return self.unary_emission(graph, op, "te_leaky_relu_params_t", {
            "size": x.size, "input_zero_point": x.zero_point,
            "output_zero_point": out.zero_point,
            "multiplier_identity": m_id, "shift_identity": s_id,
            "multiplier_alpha": m_a, "shift_alpha": s_a},
            ["te_common.h", "te_leaky_relu.h", "te_leaky_relu.c"])

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        o = tflite_options(operator, "LeakyReluOptions")
        return tflite_import({"alpha": float(o.Alpha()) if o is not None else 0.0}, 1, inputs)

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        o = fb.LeakyReluOptionsT()
        o.alpha = float(op.attrs["alpha"])
        return TfliteLowering("LeakyReluOptions", o)

    def from_onnx(self, b: OnnxBuilder, i: int, node: NodeProto) -> None:
        from ..frontend import onnx_ops as ox

        alpha = float(ox.node_attrs(node).get("alpha", 0.01))
        b.emit("LEAKY_RELU", node, [b.activation(node.input[0])], node.output[0],
               {"alpha": float(np.float32(alpha))})

    def to_qdq(self, b: QdqBuilder, op: Op) -> str:
        return b.node("LeakyRelu", [b.dequantized(op.inputs[0])], op.name,
                      alpha=float(op.attrs["alpha"]))
