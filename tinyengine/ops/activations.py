"""RELU and RELU6 on int8 tensors, and what every int8 -> int8 element-wise activation shares.

RELU semantics: TFLM's activations.cc, ReluQuantized with CalculateReluOpData. The input is
requantised to the output, y = zp_out + MultiplyByQuantizedMultiplier(x - zp_in, M, s) with
(M, s) = QuantizeMultiplier(double(float(s_in / s_out))) (the ratio is taken in float32), and
clamped to [max(-128, zp_out), 127].

RELU6 semantics: TFLM's Relu6Quantized does not requantise: it clamps the input bytes to
[zp_in, six] with six = clamp(round(6.0f / s_in) + zp_in, -128, 127) and writes them to the
output as they are. That is only right when the output has the input's quantisation, so `check`
insists on it and `quant_rule` makes the two share one set of parameters.

TFLM has no RELU_N1_TO_1 kernel, so ONNX Clip(-1, 1) is refused rather than run unchecked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import quant
from ..errors import UnsupportedError
from ..ir import Graph, Op, Tensor
from .base import (
    Arg,
    ConstArray,
    CValue,
    OpDef,
    OpEmission,
    QuantRule,
    TfliteImport,
    TfliteLowering,
    register,
)
from .common import check_int8_io, clamp_int8, tflite_import, where

if TYPE_CHECKING:
    from types import ModuleType

    from onnx import NodeProto

    from ..frontend.onnx_ops import OnnxBuilder
    from ..quantize.qdq import QdqBuilder

SOURCES = ["te_common.h", "te_activations.h", "te_activations.c"]


def check_unary(graph: Graph, op: Op) -> tuple[Tensor, Tensor]:
    """One int8 per-tensor activation in, one of the same shape out; returns (input, output)."""
    if len(op.inputs) != 1 or not op.inputs[0] or len(op.outputs) != 1:
        raise UnsupportedError(f"{where(op)}: needs one input and one output, got inputs "
                               f"{op.inputs} and outputs {op.outputs}")
    check_int8_io(graph, op)
    x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if tuple(x.shape) != tuple(out.shape):
        raise UnsupportedError(f"{where(op)}: input {x.name} {x.shape} and output {out.name} "
                               f"{out.shape} must have the same shape")
    for t in (x, out):
        if not -128 <= t.zero_point <= 127:
            raise UnsupportedError(f"{where(op)}: zero point {t.zero_point} of {t.name} is not "
                                   "in the int8 range [-128, 127]")
    return x, out


def check_fixed_output(op: Op, out: Tensor, scale: float, zero_point: int) -> None:
    """The output quantisation an op dictates (LOGISTIC, TANH), compared as float32 scales."""
    if np.float32(out.scale) != np.float32(scale) or out.zero_point != zero_point:
        raise UnsupportedError(
            f"{where(op)}: output {out.name} has scale {out.scale:g} and zero point "
            f"{out.zero_point}; TFLite's int8 {op.kind} needs exactly scale {scale:g} and zero "
            f"point {zero_point}")


def f32_ratio(a: float, b: float) -> float:
    """float(a) / float(b) in float32, widened to double (TFLM's `double(a / b)` on floats)."""
    return float(np.float32(np.float32(a) / np.float32(b)))


def rescale(op: Op, real: float, what: str) -> tuple[int, int]:
    """QuantizeMultiplier(real), refused where TFLM's arithmetic would shift out of int32."""
    m, shift = quant.quantize_multiplier(real)
    if not -31 <= shift <= 30:
        raise UnsupportedError(f"{where(op)}: the {what} rescale {real:g} is outside "
                               "[2^-32, 2^30]; choose quantisation scales closer together")
    return m, shift


class UnaryActivation(OpDef):
    """An int8 -> int8 element-wise activation with one input, computed in place if need be:
    every kernel reads element i before it writes element i."""

    dtypes = ("int8",)
    patch = "elementwise"
    not_applicable = frozenset({"window", "scratch_bytes", "macs"})

    def inplace_inputs(self, graph: Graph, op: Op) -> list[int]:
        return [0]

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        return [tuple(graph.tensor(op.inputs[0]).shape)]

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        return QuantRule()  # input and output calibrated each on its own

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        return tflite_import({}, 1, inputs)

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        return TfliteLowering("NONE")

    def unary_emission(self, graph: Graph, op: Op, params_type: str, params: dict[str, CValue],
                       sources: list[str], consts: list[ConstArray] | None = None
                       ) -> OpEmission:
        args = [Arg("tensor", op.inputs[0], "const int8_t")]
        args += [Arg("const", c.name, "const int8_t") for c in consts or []]
        args.append(Arg("tensor", op.outputs[0], "int8_t"))
        return OpEmission(kernel=self.kernel(graph, op), params_type=params_type,
                          params=params, args=args, consts=list(consts or []),
                          sources=sources)


def relu_params(op: Op, x: Tensor, out: Tensor) -> tuple[int, int, int]:
    """(multiplier, shift, act_min) of CalculateReluOpData<int8_t>."""
    m, shift = rescale(op, f32_ratio(x.scale, out.scale), "input-to-output")
    return m, shift, max(-128, out.zero_point)  # roundf(0.0f / scale) is 0


def relu6_limits(x: Tensor) -> tuple[int, int]:
    """(zero, six) of Relu6Prepare: both in the input's units."""
    six = quant.tflite_round(float(np.float32(6.0) / np.float32(x.scale))) + x.zero_point
    return x.zero_point, int(min(127, max(-128, six)))


@register
class Relu(UnaryActivation):
    kind = "RELU"
    onnx_types = ("Relu",)

    def check(self, graph: Graph, op: Op) -> None:
        x, out = check_unary(graph, op)
        relu_params(op, x, out)

    def kernel(self, graph: Graph, op: Op) -> str:
        return "te_relu_s8"

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        m, shift, lo = relu_params(op, x, out)
        y = quant.multiply_by_quantized_multiplier(inputs[0].astype(np.int64) - x.zero_point,
                                                   m, shift) + out.zero_point
        return [clamp_int8(y, lo, 127).reshape(out.shape)]

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        m, shift, lo = relu_params(op, x, out)
        return self.unary_emission(graph, op, "te_relu_params_t", {
            "size": x.size, "input_zero_point": x.zero_point,
            "output_zero_point": out.zero_point, "multiplier": m, "shift": shift,
            "act_min": lo, "act_max": 127}, list(SOURCES))

    def from_onnx(self, b: OnnxBuilder, i: int, node: NodeProto) -> None:
        b.emit("RELU", node, [b.activation(node.input[0])], node.output[0], {})

    def to_qdq(self, b: QdqBuilder, op: Op) -> str:
        return b.node("Relu", [b.dequantized(op.inputs[0])], op.name)


@register
class Relu6(UnaryActivation):
    kind = "RELU6"
    onnx_types = ("Clip",)

    def check(self, graph: Graph, op: Op) -> None:
        x, out = check_unary(graph, op)
        if x.zero_point != out.zero_point or np.float32(x.scale) != np.float32(out.scale):
            raise UnsupportedError(
                f"{where(op)}: input {x.name} (scale {x.scale:g}, zero point {x.zero_point}) "
                f"and output {out.name} (scale {out.scale:g}, zero point {out.zero_point}) "
                "must share their quantisation: TFLite Micro's RELU6 clamps without "
                "requantising")

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        return QuantRule(share=[(op.inputs[0], op.outputs[0])])

    def kernel(self, graph: Graph, op: Op) -> str:
        return "te_relu6_s8"

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        zero, six = relu6_limits(graph.tensor(op.inputs[0]))
        return [clamp_int8(inputs[0], zero, six)]

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        x = graph.tensor(op.inputs[0])
        zero, six = relu6_limits(x)
        return self.unary_emission(graph, op, "te_relu6_params_t",
                                   {"size": x.size, "lower": zero, "upper": six}, list(SOURCES))

    def from_onnx(self, b: OnnxBuilder, i: int, node: NodeProto) -> None:
        from ..frontend import onnx_ops as ox

        lo, hi = ox.clip_bounds(b, node)
        if lo == 0.0 and hi == 6.0:
            kind = "RELU6"
        elif lo == 0.0 and hi == np.inf:
            kind = "RELU"
        else:
            raise ox.Unsupported(f"Clip({lo:g}, {hi:g}): only Clip(0, 6) (RELU6) and "
                                 "Clip(0, inf) (RELU) have int8 kernels in TFLite Micro")
        b.emit(kind, node, [b.activation(node.input[0])], node.output[0], {})

    def to_qdq(self, b: QdqBuilder, op: Op) -> str:
        return b.node("Clip", [b.dequantized(op.inputs[0]),
                               b.const("clip_min", np.array(0.0, np.float32)),
                               b.const("clip_max", np.array(6.0, np.float32))], op.name)
