"""LOGISTIC and TANH on int8 tensors, computed in C through a 256-entry table.

Reference semantics: TFLM's logistic.cc / tanh.cc (int8 paths) and
reference_integer_ops::Logistic / ::Tanh, in gemmlowp fixed point. Prepare derives, from the
input scale alone,
  (q, shift) = frexp(double(s_in) * 2^27),  M = int32(TfLiteRound(q * 2^31))  (no renormalising)
  radius = floor(15 * 2^27 / 2^shift)       (CalculateInputRadius(4, shift, 31))
and each element, v = x - zp_in, becomes -128 / 127 beyond the radius, else
  a = MultiplyByQuantizedMultiplier(v, M, shift)         the input in Q4.27
  LOGISTIC: y = RoundingDivideByPOT(gemmlowp::logistic(a), 23) - 128, clamped to int8
  TANH:     y = RoundingDivideByPOT(gemmlowp::tanh(a), 24),        clamped to int8
so the output is 1/256 with zero point -128 (LOGISTIC) or 1/128 with zero point 0 (TANH). TFLM
checks only LOGISTIC's zero point and nothing of TANH's output; `check` holds both outputs to
exactly these parameters, and `quant_rule` fixes them.

The output depends on the int8 input value alone, so `reference` evaluates the fixed-point
function on all 256 inputs and looks each element up; the C kernel does the same lookup in that
table (a 256-byte constant in flash), which equals TFLM's output for every int8 input (the tests
check all 256 against TFLM).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .. import fixedpoint as fp
from .. import quant
from ..errors import UnsupportedError
from ..ir import Graph, Op, Tensor
from .activations import UnaryActivation, check_fixed_output, check_unary, where
from .base import ConstArray, OpEmission, QuantRule, register

if TYPE_CHECKING:
    from onnx import NodeProto

    from ..frontend.onnx_ops import OnnxBuilder
    from ..quantize.qdq import QdqBuilder

INPUT_INTEGER_BITS = 4
SOURCES = ["te_common.h", "te_logistic_tanh.h", "te_logistic_tanh.c"]
ALL_INT8 = np.arange(-128, 128, dtype=np.int64)


def input_params(op: Op, x: Tensor) -> tuple[int, int, int]:
    """(multiplier, left shift, input radius) of the int8 Prepare of LOGISTIC and TANH."""
    q, shift = math.frexp(float(np.float32(x.scale)) * float(1 << (31 - INPUT_INTEGER_BITS)))
    if not 0 <= shift <= 31:
        raise UnsupportedError(f"{where(op)}: input scale {x.scale:g} is outside [2^-27, 16], "
                               "where TFLite's int8 fixed-point arithmetic is defined")
    multiplier = quant.tflite_round(q * (1 << 31))
    if multiplier == 1 << 31:  # static_cast<int32_t> of 2^31, which Prepare does not renormalise
        multiplier = quant.INT32_MIN
    radius = (((1 << INPUT_INTEGER_BITS) - 1) << (31 - INPUT_INTEGER_BITS)) >> shift
    return multiplier, shift, radius


def _reciprocal_newton(half_denominator: np.ndarray) -> np.ndarray:
    """x ~ 1 / (2 * half_denominator) in Q2: gemmlowp's three Newton-Raphson steps from
    48/17 - 32/17 * d (shared by one_over_one_plus_x and one_minus_x_over_one_plus_x)."""
    x = fp.add(fp.FORTY_EIGHT_OVER_SEVENTEEN,
               fp.mul(half_denominator, fp.MINUS_THIRTY_TWO_OVER_SEVENTEEN))
    for _ in range(3):
        x = fp.add(x, fp.rescale(fp.mul(x, fp.sub(fp.one(2), fp.mul(half_denominator, x))), 4, 2))
    return x


def logistic_q0(a: np.ndarray) -> np.ndarray:
    """gemmlowp::logistic of Q4 raws: Q0 raws."""
    positive = a > 0
    magnitude = np.where(positive, a, -a)
    e = fp.exp_on_negative_values(-magnitude, INPUT_INTEGER_BITS)
    # one_over_one_plus_x_for_x_in_0_1: Rescale<0>(ExactMulByPot<-1>(x)) reads Q2 as Q1.
    if_positive = fp.rescale(_reciprocal_newton(fp.rounding_half_sum(e, fp.one(0))), 1, 0)
    if_negative = fp.sub(fp.one(0), if_positive)
    return np.where(a == 0, 1 << 30, np.where(positive, if_positive, if_negative))


def tanh_q0(a: np.ndarray) -> np.ndarray:
    """gemmlowp::tanh of Q4 raws: Q0 raws."""
    negative = a < 0
    n = np.where(negative, a, -a)
    e = fp.exp_on_negative_values(n, INPUT_INTEGER_BITS + 1)  # ExactMulByPot<1>: 2n, Q5
    # one_minus_x_over_one_plus_x_for_x_in_0_1: Rescale<0>(x - 1) from Q2.
    t = fp.rescale(fp.sub(_reciprocal_newton(fp.rounding_half_sum(e, fp.one(0))), fp.one(2)),
                   2, 0)
    return np.where(a == 0, 0, np.where(negative, -t, t))


def table(op: Op, x: Tensor) -> np.ndarray:
    """The op's int8 output for each int8 input -128..127, TFLM's arithmetic element by element."""
    multiplier, shift, radius = input_params(op, x)
    v = ALL_INT8 - x.zero_point
    inside = (v > -radius) & (v < radius)
    a = quant.multiply_by_quantized_multiplier(np.where(inside, v, 0), multiplier, shift)
    if op.kind == "LOGISTIC":
        y = quant.rounding_divide_by_pot(logistic_q0(a), 31 - 8) - 128
    else:
        y = quant.rounding_divide_by_pot(tanh_q0(a), 31 - 7)
    y = np.where(v <= -radius, -128, np.where(v >= radius, 127, y))
    return np.clip(y, -128, 127).astype(np.int8)


class _TableActivation(UnaryActivation):
    output_params: tuple[float, int] = (1.0, 0)
    onnx_type = ""

    def check(self, graph: Graph, op: Op) -> None:
        x, out = check_unary(graph, op)
        check_fixed_output(op, out, *self.output_params)
        input_params(op, x)

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        return QuantRule(fixed={op.outputs[0]: self.output_params})

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        lut = table(op, graph.tensor(op.inputs[0]))
        return [lut[inputs[0].astype(np.int64) + 128]]

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        x = graph.tensor(op.inputs[0])
        return self.unary_emission(graph, op, "te_lut_params_t", {"size": x.size},
                                   list(SOURCES), [ConstArray("table", "int8_t", table(op, x))])

    def from_onnx(self, b: OnnxBuilder, i: int, node: NodeProto) -> None:
        b.emit(self.kind, node, [b.activation(node.input[0])], node.output[0], {})

    def to_qdq(self, b: QdqBuilder, op: Op) -> str:
        return b.node(self.onnx_type, [b.dequantized(op.inputs[0])], op.name)


@register
class Logistic(_TableActivation):
    kind = "LOGISTIC"
    onnx_types = ("Sigmoid",)
    onnx_type = "Sigmoid"
    output_params = (1.0 / 256.0, -128)

    def kernel(self, graph: Graph, op: Op) -> str:
        return "te_logistic_s8"


@register
class Tanh(_TableActivation):
    kind = "TANH"
    onnx_types = ("Tanh",)
    onnx_type = "Tanh"
    output_params = (1.0 / 128.0, 0)

    def kernel(self, graph: Graph, op: Op) -> str:
        return "te_tanh_s8"
