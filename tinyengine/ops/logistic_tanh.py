"""LOGISTIC and TANH: int8 tensors through a 256-entry table, int16 tensors by interpolation.

int8 reference semantics: TFLM's logistic.cc / tanh.cc (int8 paths) and
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

The int16 paths (TFLite's 16x8 mode) are another algorithm, reference_integer_ops::Logistic /
::Tanh for int16 with the Prepare of logistic_common.cc / tanh.cc. Input and output are
symmetric; the output scale must be 2^-15 (TFLM's CheckedLog2 to within 1e-3 in log2). Prepare
rescales the input so that 1.0 is 3 * 2^12:
  a power-of-two input scale 2^-12 (tanh also 2^-11): v = x * (3 << k), k = 12 + log2(s_in);
  any other scale: M = trunc(double(s_in) * 3 * 4096 * 2^k) with the smallest k <= 31 that
  makes it exceed 32767 / 2, and v = (x * M + 2^(k-1)) >> k.
Then |v| indexes TFLite's table of sigmoid(i / 24) in Q0.16 (SIGMOID_TABLE_Q16, 256 entries),
with 9 (LOGISTIC) or 8 (TANH: at twice the argument, tanh(x) being 2 sigmoid(2x) - 1) fraction
bits interpolated linearly, saturating at index 255, and the sign of v mirrors the result
(`logistic_int16`, `tanh_int16`). The C kernels compute the same per element from the table,
passed as a constant (no float anywhere).
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
from .common import SUFFIX, io_dtype

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


# -- int16 (TFLite's 16x8 mode) -----------------------------------------------------------------

# TFLite's sigmoid_table_uint16 (tensorflow/lite/kernels/internal/common.h): sigmoid(i / 24) in
# Q0.16, i = 0..255, the last entry held at 65535. Not a plain rounding of the function (44 of
# the entries are one below it), so the values themselves are the specification.
SIGMOID_TABLE_Q16 = np.array([
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794,
    41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443,
    48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169, 53581, 53983, 54374,
    54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433, 57724, 58007, 58280, 58544,
    58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110, 61279,
    61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990,
    63090, 63186, 63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030,
    64090, 64148, 64204, 64257, 64308, 64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652,
    64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019,
    65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234,
    65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360,
    65367, 65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
    65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476,
    65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498, 65500, 65501,
    65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513, 65514, 65515, 65516,
    65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529,
    65529, 65530, 65530, 65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532,
    65532, 65532, 65532, 65533, 65533, 65533, 65533, 65533, 65533, 65533, 65533, 65534, 65534,
    65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535], np.uint16)
INT16_OUTPUT_PARAMS = (1.0 / 32768.0, 0)


def checked_log2(x: float) -> tuple[int, bool]:
    """TFLite's CheckedLog2 in float32: (round(log2 x), whether x is a power of two to within
    1e-3 in the exponent)."""
    f = np.float32
    x_log2 = f(f(math.log(f(x))) * f(f(1.0) / f(math.log(2.0))))
    rounded = f(quant.tflite_round(float(x_log2)))
    return int(rounded), bool(abs(f(x_log2 - rounded)) < f(1e-3))


def int16_params(op: Op, x: Tensor, out: Tensor) -> tuple[int, int]:
    """(multiplier, right shift) such that v = (x * multiplier + round) >> shift, as the int16
    Prepare of LOGISTIC / TANH followed by the kernel's power-of-two substitution."""
    log2_out, pot_out = checked_log2(out.scale)
    if not pot_out or log2_out != -15:
        raise UnsupportedError(
            f"{where(op)}: output {out.name} has scale {out.scale:g}; TFLite's int16 {op.kind} "
            "needs exactly scale 2^-15 (1/32768) and zero point 0")
    log2_in, pot = checked_log2(x.scale)
    shift = 12 + log2_in  # (15 - kInputIntegerBits) + log2(s_in)
    pot &= shift == 0 or (op.kind == "TANH" and shift == 1)
    if pot:
        return 3 << shift, 0
    real = float(np.float32(x.scale)) * 4096.0 * 3.0
    shift = 0
    while real <= 32767.0 / 2.0 and shift <= 30:
        shift += 1
        real *= 2.0
    multiplier = int(real) if real < 2.0 ** 31 else 1 << 31
    if not 1 <= multiplier <= 32767:
        raise UnsupportedError(
            f"{where(op)}: input {x.name} has scale {x.scale:g}; TFLite's int16 {op.kind} "
            "takes input scales from about 3.8e-14 to 2.67 (its 16-bit input multiplier "
            "overflows outside)")
    return multiplier, shift


def _rescale_int16(x: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    rounding = 1 << (shift - 1) if shift > 0 else 0
    return (x.astype(np.int64) * multiplier + rounding) >> shift


def _interpolate(magnitude: np.ndarray, fraction_bits: int) -> np.ndarray:
    """The table at |v| / 2^fraction_bits, linearly interpolated in the fraction bits, scaled by
    2^fraction_bits; index 255 and beyond saturate (to 0xFFFF << 8 for TANH, 0x7FFF << 10 for
    LOGISTIC: the callers substitute those)."""
    table = SIGMOID_TABLE_Q16.astype(np.int64)
    index = np.minimum(magnitude >> fraction_bits, 254)
    frac = magnitude & ((1 << fraction_bits) - 1)
    lo, hi = table[index], table[index + 1]
    return (lo << fraction_bits) + frac * (hi - lo)


def logistic_int16(x: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """reference_integer_ops::Logistic for int16: Q0.15 output in [1, 32767]."""
    v = _rescale_int16(x, multiplier, shift)
    a = np.abs(v)
    r = np.where((a >> 9) >= 255, 0x7FFF << 10, _interpolate(a, 9))
    r = np.where(v >= 0, r + (1 << 9), (1 << 25) - r + (1 << 9) - 1)
    return (r >> 10).astype(np.int16)


def tanh_int16(x: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """reference_integer_ops::Tanh for int16: Q0.15 output in [-32767, 32767]."""
    v = _rescale_int16(x, multiplier, shift)
    a = np.abs(v)
    r = np.where((a >> 8) >= 255, 0xFFFF << 8, _interpolate(a, 8))
    r = np.where(v >= 0, r - (1 << 23) + (1 << 7), -r + (1 << 23) + (1 << 7) - 1)
    return (r >> 8).astype(np.int16)  # an arithmetic shift, as TFLite's on int32


class _TableActivation(UnaryActivation):
    dtypes = ("int8", "int16")
    output_params: tuple[float, int] = (1.0, 0)  # int8's; int16's is INT16_OUTPUT_PARAMS
    onnx_type = ""

    def check(self, graph: Graph, op: Op) -> None:
        x, out = check_unary(graph, op, self.dtypes)
        if x.dtype == "int16":
            int16_params(op, x, out)
            return
        check_fixed_output(op, out, *self.output_params)
        input_params(op, x)

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        int16 = graph.tensor(op.outputs[0]).dtype == "int16"
        return QuantRule(fixed={op.outputs[0]: INT16_OUTPUT_PARAMS if int16 else
                                self.output_params})

    def kernel(self, graph: Graph, op: Op) -> str:
        return f"te_{self.kind.lower()}_{SUFFIX[io_dtype(graph, op)]}"

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        if x.dtype == "int16":
            fn = logistic_int16 if op.kind == "LOGISTIC" else tanh_int16
            return [fn(inputs[0], *int16_params(op, x, out))]
        lut = table(op, x)
        return [lut[inputs[0].astype(np.int64) + 128]]

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        if x.dtype == "int16":
            multiplier, shift = int16_params(op, x, out)
            return self.unary_emission(
                graph, op, "te_sigmoid16_params_t",
                {"size": x.size, "input_multiplier": multiplier, "input_shift": shift},
                list(SOURCES), [ConstArray("table", "uint16_t", SIGMOID_TABLE_Q16, shared=True)])
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


@register
class Tanh(_TableActivation):
    kind = "TANH"
    onnx_types = ("Tanh",)
    onnx_type = "Tanh"
    output_params = (1.0 / 128.0, 0)
