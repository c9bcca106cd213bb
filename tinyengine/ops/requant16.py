"""The 16x8 side of the weighted ops (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, TRANSPOSE_CONV):
int16 activations, int8 weights, and TFLM's two accumulator types.

TFLM accumulates a 16x8 convolution in the type of its bias (reference_integer_ops templates on
it). With an int64 bias (the converter's default) it sums in int64 and requantises with the
int64 overload of MultiplyByQuantizedMultiplier (tensorflow/lite/kernels/internal/common.cc),
whose rounding is not the int32 one's:
  reduced = (multiplier + 2^15) >> 16 (the Q31 multiplier rounded to Q15, at most 0x7FFF),
  result  = int32((x * reduced + 2^(14 - shift)) >> (15 - shift)),
one rounding, half up (towards +inf), where the int32 rule rounds twice, half away from zero.
With an int32 bias, or no bias and the options' quantized_bias_type INT32, CONV_2D and
FULLY_CONNECTED sum in int32 (wrapping, as two's-complement hardware does) and use the int32
rule. DEPTHWISE_CONV_2D always reads an int64 bias; TRANSPOSE_CONV an int64 one or an int16
one it widens to int64. Activations are symmetric (zero point 0): TFLM's 16x8 kernels apply no
input or output offset.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import quant
from ..errors import UnsupportedError
from ..ir import Graph, Op, Tensor
from ..quant import multiply_by_quantized_multiplier_64
from .base import ConstArray
from .common import clamp_to, requant_consts, where

# TFLM's contract for the int64 MultiplyByQuantizedMultiplier: |x| < 2^47, so that x * reduced
# (reduced < 2^15) stays inside int64.
ACC64_LIMIT = 1 << 47
# 1 << (14 - shift) must be a valid shift: the int64 rule takes shifts up to 14 (TFLM asserts
# < 8 in debug builds only; up to 14 its result is defined, from 15 on it shifts by -1).
MAX_SHIFT64 = 14
# The magnitude of an int16 activation.
INT16_ABS_MAX = 1 << 15

# tflite TensorType values of the options' quantized_bias_type field.
_TFLITE_INT32, _TFLITE_INT64 = 2, 4


def accumulator(graph: Graph, op: Op, bias_types: tuple[str, ...] = ("int64", "int32")) -> str:
    """The accumulator type TFLM uses for this 16x8 op: its bias's type among `bias_types` (int16
    counts as int64: TFLM widens it), else the options' quantized_bias_type, else int64."""
    b = bias_tensor(graph, op)
    if b is not None:
        return "int32" if b.dtype == "int32" and "int32" in bias_types else "int64"
    if "int32" in bias_types and op.attrs.get("quantized_bias_type") == "int32":
        return "int32"
    return "int64"


def bias_tensor(graph: Graph, op: Op, pos: int = 2) -> Tensor | None:
    return graph.tensor(op.inputs[pos]) if len(op.inputs) > pos and op.inputs[pos] else None


def check_bias16(op: Op, bias: Tensor | None, weights: Tensor, axis: int,
                 bias_types: tuple[str, ...], weights_offset: int = 0) -> None:
    """The bias of a 16x8 op is a constant vector of one value per output channel, of a type
    TFLM reads for this op; with an int64 accumulator no sum may leave TFLM's |x| < 2^47 (beyond
    it the C product x * multiplier overflows): |bias[c]| + 2^15 * sum |w[c] + offset| < 2^47."""
    channels = weights.shape[axis]
    if bias is not None:
        if bias.dtype not in bias_types or not bias.is_const or tuple(bias.shape) != (channels,):
            raise UnsupportedError(
                f"{where(op)}: bias {bias.name} {bias.dtype} {bias.shape} must be a constant "
                f"{' or '.join(bias_types)} vector of the {channels} output channels (TFLM's "
                "16x8 kernel for this op reads no other bias type)")
    if bias is not None and bias.dtype == "int32":
        return  # int32 sums wrap like TFLM's: no bound
    if weights.data is None or (bias is not None and bias.data is None):
        return
    w = np.moveaxis(weights.data.astype(np.int64) + weights_offset, axis, 0).reshape(channels, -1)
    bound = INT16_ABS_MAX * np.abs(w).sum(axis=1)
    if bias is not None:
        assert bias.data is not None
        bound = bound + np.abs(bias.data.astype(np.int64))
    if np.any(bound >= ACC64_LIMIT):
        c = int(np.argmax(bound >= ACC64_LIMIT))
        what = f"bias {bias.name}[{c}] with the" if bias is not None else "the"
        raise UnsupportedError(
            f"{where(op)}: {what} weights of channel {c} of {weights.name} can reach "
            f"{int(bound[c])} >= 2^47 in the int64 accumulator, outside TFLM's "
            "MultiplyByQuantizedMultiplier(int64) domain; the bias or the weights are out of "
            "range")


def check_shifts16(op: Op, shift: np.ndarray, acc: str) -> None:
    """The int64 rule shifts by 15 - shift: a multiplier of 2^14 or more has no defined result."""
    if acc == "int64" and np.any(shift > MAX_SHIFT64):
        raise UnsupportedError(
            f"{where(op)}: a requantisation multiplier needs a left shift of {int(shift.max())};"
            f" TFLM's 16x8 (int64) requantisation takes at most {MAX_SHIFT64} (an output scale "
            "2^14 times smaller than input scale x weight scale): fix the output scale")


def requantize16(acc: np.ndarray, mult: np.ndarray, shift: np.ndarray, acc_type: str,
                 out: Tensor, lo: int, hi: int) -> np.ndarray:
    """Exact accumulators (bias included; last axis = channel) -> int16, as TFLM's 16x8 kernels:
    the int64 rule, or the int32 rule on the sum wrapped to int32; then the activation clamp."""
    if acc_type == "int64":
        y = multiply_by_quantized_multiplier_64(acc, mult.astype(np.int64),
                                                shift.astype(np.int64))
    else:
        y = quant.multiply_by_quantized_multiplier(quant._wrap32(acc), mult.astype(np.int64),
                                                   shift.astype(np.int64))
    return clamp_to(y, out, lo, hi)


def bias_const16(bias: Tensor | None, acc_type: str) -> list[ConstArray]:
    """The bias as the kernel reads it: int64_t (an int16 bias widened, as TFLM does in its
    scratch) or, for the int32 accumulator, int32_t."""
    if bias is None:
        return []
    assert bias.data is not None
    dtype, ctype = (np.int64, "int64_t") if acc_type == "int64" else (np.int32, "int32_t")
    return [ConstArray("bias", ctype, bias.data.ravel().astype(dtype))]


def bias_ctype16(acc_type: str) -> str:
    return "const int64_t" if acc_type == "int64" else "const int32_t"


def weight_consts16(weights: Tensor, bias: Tensor | None, mult: np.ndarray, shift: np.ndarray,
                    acc_type: str, weights_name: str = "filter") -> list[ConstArray]:
    """The flash arrays of a 16x8 op: int8 weights, requantisation tables, the bias."""
    assert weights.data is not None
    return ([ConstArray(weights_name, "int8_t", weights.data.ravel())]
            + requant_consts(mult, shift) + bias_const16(bias, acc_type))


def bias_type_attr(options: Any) -> dict[str, str]:
    """attrs["quantized_bias_type"] from a Conv2D/FullyConnected options table: "int32" or
    "int64" when the model says, nothing when it leaves the default (TFLM then sums in int64)."""
    value = options.QuantizedBiasType() if options is not None else 0
    return {_TFLITE_INT32: {"quantized_bias_type": "int32"},
            _TFLITE_INT64: {"quantized_bias_type": "int64"}}.get(int(value), {})


def set_bias_type(fb: Any, options: Any, op: Op) -> None:
    """The inverse of bias_type_attr on an options object of TFLite's schema (object API)."""
    kind = op.attrs.get("quantized_bias_type")
    if kind is not None:
        options.quantizedBiasType = int(getattr(fb.TensorType, kind.upper()))
