"""RELU and RELU6 on int8 and int16 tensors, and what every element-wise activation shares.

RELU semantics: TFLM's activations.cc, ReluQuantized with CalculateReluOpData<T>. The input is
requantised to the output, y = zp_out + MultiplyByQuantizedMultiplier(x - zp_in, M, s) with
(M, s) = QuantizeMultiplier(s_in / s_out), and clamped to [max(T_min, zp_out), T_max]: int8
[max(-128, zp_out), 127]; int16 (TFLM's Prepare insists on zero points 0) [0, 32767].
The ratio: the installed TFLM (tflite-micro 0.dev20261023; its machine code converts both scales
to double and divides there) takes double(s_in) / double(s_out), which the int16 path follows.
The int8 path keeps the float32 quotient double(float(s_in / s_out)) that TFLM's source reads
and that it was written and tested with; the two differ only on rare scales at large inputs
(`scale_ratio`).

RELU6 semantics: TFLM's Relu6Quantized does not requantise: it clamps the input values to
[zp_in, six] with six = clamp(round(6.0f / s_in) + zp_in, T_min, T_max) and writes them to the
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
from .common import (
    CTYPE,
    SUFFIX,
    check_io,
    clamp_to,
    io_dtype,
    qrange,
    tflite_import,
    where,
)

if TYPE_CHECKING:
    from types import ModuleType

    from onnx import NodeProto

    from ..frontend.onnx_ops import OnnxBuilder
    from ..quantize.qdq import QdqBuilder

SOURCES = ["te_common.h", "te_activations.h", "te_activations.c"]


def check_unary(graph: Graph, op: Op, dtypes: tuple[str, ...] = ("int8",)
                ) -> tuple[Tensor, Tensor]:
    """One per-tensor activation in, one of the same shape and type out, of a type among
    `dtypes` (int16 ones symmetric); returns (input, output)."""
    if len(op.inputs) != 1 or not op.inputs[0] or len(op.outputs) != 1:
        raise UnsupportedError(f"{where(op)}: needs one input and one output, got inputs "
                               f"{op.inputs} and outputs {op.outputs}")
    dtype = check_io(graph, op, 1, dtypes)
    x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if tuple(x.shape) != tuple(out.shape):
        raise UnsupportedError(f"{where(op)}: input {x.name} {x.shape} and output {out.name} "
                               f"{out.shape} must have the same shape")
    lo, hi = qrange(dtype)
    for t in (x, out):
        if not lo <= t.zero_point <= hi:
            raise UnsupportedError(f"{where(op)}: zero point {t.zero_point} of {t.name} is not "
                                   f"in the {dtype} range [{lo}, {hi}]")
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


def scale_ratio(x: Tensor, out: Tensor) -> float:
    """s_in / s_out for RELU's and LEAKY_RELU's rescale: double(s_in) / double(s_out), as the
    installed TFLM computes it for int8 and int16 alike (its source reads as a float32 quotient
    widened to double; the float32 quotient is off by one in rare outputs, e.g. RELU int8 with
    scales 0.0270778 / 0.0174639 at input 27: tests/test_ops_activations.py pins it)."""
    return float(np.float32(x.scale)) / float(np.float32(out.scale))


def rescale(op: Op, real: float, what: str) -> tuple[int, int]:
    """QuantizeMultiplier(real), refused where TFLM's arithmetic would shift out of int32."""
    m, shift = quant.quantize_multiplier(real)
    if not -31 <= shift <= 30:
        raise UnsupportedError(f"{where(op)}: the {what} rescale {real:g} is outside "
                               "[2^-32, 2^30]; choose quantisation scales closer together")
    return m, shift


class UnaryActivation(OpDef):
    """An element-wise activation with one input and an output of the same type (int8, or int16
    where the subclass lists it), computed in place if need be: every kernel reads element i
    before it writes element i."""

    dtypes: tuple[str, ...] = ("int8",)
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
        ctype = CTYPE[io_dtype(graph, op)]
        args = [Arg("tensor", op.inputs[0], f"const {ctype}")]
        args += [Arg("const", c.name, f"const {c.ctype}") for c in consts or []]
        args.append(Arg("tensor", op.outputs[0], ctype))
        return OpEmission(kernel=self.kernel(graph, op), params_type=params_type,
                          params=params, args=args, consts=list(consts or []),
                          sources=sources)


def relu_params(op: Op, x: Tensor, out: Tensor) -> tuple[int, int, int, int]:
    """(multiplier, shift, act_min, act_max) of CalculateReluOpData<T>."""
    m, shift = rescale(op, scale_ratio(x, out), "input-to-output")
    lo, hi = qrange(out)
    return m, shift, max(lo, out.zero_point), hi  # roundf(0.0f / scale) is 0


def relu6_limits(x: Tensor) -> tuple[int, int]:
    """(zero, six) of Relu6Prepare: both in the input's units (FloatToQuantizedType<T>)."""
    lo, hi = qrange(x)
    six = quant.tflite_round(float(np.float32(6.0) / np.float32(x.scale))) + x.zero_point
    return x.zero_point, int(min(hi, max(lo, six)))


@register
class Relu(UnaryActivation):
    kind = "RELU"
    dtypes = ("int8", "int16")
    onnx_types = ("Relu",)

    def check(self, graph: Graph, op: Op) -> None:
        x, out = check_unary(graph, op, self.dtypes)
        relu_params(op, x, out)

    def kernel(self, graph: Graph, op: Op) -> str:
        return f"te_relu_{SUFFIX[io_dtype(graph, op)]}"

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        m, shift, lo, hi = relu_params(op, x, out)
        y = quant.multiply_by_quantized_multiplier(inputs[0].astype(np.int64) - x.zero_point,
                                                   m, shift) + out.zero_point
        return [clamp_to(y, out, lo, hi).reshape(out.shape)]

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        m, shift, lo, hi = relu_params(op, x, out)
        return self.unary_emission(graph, op, "te_relu_params_t", {
            "size": x.size, "input_zero_point": x.zero_point,
            "output_zero_point": out.zero_point, "multiplier": m, "shift": shift,
            "act_min": lo, "act_max": hi}, list(SOURCES))

    def from_onnx(self, b: OnnxBuilder, i: int, node: NodeProto) -> None:
        b.emit("RELU", node, [b.activation(node.input[0])], node.output[0], {})

    def to_qdq(self, b: QdqBuilder, op: Op) -> str:
        return b.node("Relu", [b.dequantized(op.inputs[0])], op.name)


@register
class Relu6(UnaryActivation):
    kind = "RELU6"
    dtypes = ("int8", "int16")
    onnx_types = ("Clip",)

    def check(self, graph: Graph, op: Op) -> None:
        x, out = check_unary(graph, op, self.dtypes)
        if x.zero_point != out.zero_point or np.float32(x.scale) != np.float32(out.scale):
            raise UnsupportedError(
                f"{where(op)}: input {x.name} (scale {x.scale:g}, zero point {x.zero_point}) "
                f"and output {out.name} (scale {out.scale:g}, zero point {out.zero_point}) "
                "must share their quantisation: TFLite Micro's RELU6 clamps without "
                "requantising")

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        return QuantRule(share=[(op.inputs[0], op.outputs[0])])

    def kernel(self, graph: Graph, op: Op) -> str:
        return f"te_relu6_{SUFFIX[io_dtype(graph, op)]}"

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x = graph.tensor(op.inputs[0])
        zero, six = relu6_limits(x)
        return [clamp_to(inputs[0], x, zero, six)]

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
