"""TFLite's integer arithmetic, vectorised in numpy. These functions are the specification.

Each mirrors a function of TFLite's reference kernels (tensorflow/lite/kernels/internal/common.h,
quantization_util.cc) bit for bit, including C's truncating division, arithmetic right shifts and
int32 wrap-around. csrc/te_common.h holds their C twins; tests/test_quant.py pins every rounding
rule with values worked out by hand.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import UnsupportedError

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1

# The largest shift a multiplier may carry. csrc/te_common.h shifts an int32 by it: left through
# te_shift_left ((uint32_t)x << left) and right through te_rounding_divide_by_pot (x >> exponent),
# both defined only for amounts 0..31; QuantizeMultiplier already flushes shifts below -31 to 0.
MAX_MULTIPLIER_SHIFT = 31


class MultiplierRangeError(UnsupportedError):
    """A real multiplier (a ratio of scales) that the Q31 fixed-point kernels cannot represent.
    Raised without the op's name; tinyengine.ir.verify adds the op and its tensors' scales."""


def _wrap32(x: np.ndarray) -> np.ndarray:
    """Two's-complement wrap of int64 values to int32, as the C code's uint32 casts do."""
    return ((np.asarray(x, np.int64) + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int64)


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """gemmlowp's SaturatingRoundingDoublingHighMul: round(a * b / 2^31), saturating MIN*MIN."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    s = ab + nudge
    high = np.sign(s) * (np.abs(s) // (1 << 31))  # C division truncates toward zero
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, high).astype(np.int64)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray | int) -> np.ndarray:
    """gemmlowp's RoundingDivideByPOT: x / 2^exponent, rounding half away from zero."""
    x = np.asarray(x, np.int64)
    e = np.asarray(exponent, np.int64)
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return ((x >> e) + (remainder > threshold)).astype(np.int64)


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: np.ndarray | int,
                                     shift: np.ndarray | int) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplier (double rounding, as TFLM's reference build)."""
    shift = np.asarray(shift, np.int64)
    left = np.where(shift > 0, shift, 0)
    right = np.where(shift > 0, 0, -shift)
    shifted = _wrap32(np.asarray(x, np.int64) << left)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


def multiply_by_quantized_multiplier_smaller_than_one_exp(
        x: np.ndarray, multiplier: int, left_shift: int) -> np.ndarray:
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier), -left_shift)


def multiply_by_quantized_multiplier_greater_than_one(
        x: np.ndarray, multiplier: int, left_shift: int) -> np.ndarray:
    shifted = _wrap32(np.asarray(x, np.int64) << left_shift)
    return saturating_rounding_doubling_high_mul(shifted, multiplier)


def tflite_round(x: float) -> int:
    """std::round: half away from zero (Python's round() is half to even)."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: real ~= multiplier * 2^(shift - 31), multiplier in Q31.

    Raises MultiplierRangeError for a multiplier that is not finite or needs a shift above
    MAX_MULTIPLIER_SHIFT (real >= 2^31): the C kernels would shift by more than 31 bits, which C
    leaves undefined, and TFLM's own kernels do the same."""
    if not math.isfinite(real):
        raise MultiplierRangeError(f"the real multiplier {real} is not a finite number; the scales "
                                   "it is computed from are out of range")
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = tflite_round(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    if shift > MAX_MULTIPLIER_SHIFT:
        raise MultiplierRangeError(
            f"the real multiplier {real:.6g} needs a left shift of {shift}; the fixed-point "
            f"kernels shift by at most {MAX_MULTIPLIER_SHIFT} (multipliers below 2^31)")
    # TFLM's default (double-rounding) build keeps a shift of 31; only TFLITE_SINGLE_ROUNDING caps
    # it at 30. Softmax reaches it when beta * input_scale >= 32.
    return int(q_fixed), int(shift)


def quantize_multiplier_greater_than_one(real: float) -> tuple[int, int]:
    assert real > 1.0, real
    m, shift = quantize_multiplier(real)
    assert shift >= 0
    return m, shift


def quantize_multipliers(reals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """quantize_multiplier over an array (per-channel requantisation), vectorised: the same
    float64 steps (frexp, q * 2^31 exactly, floor(|x| + 0.5) with the sign), so the same result
    and the same errors, at numpy speed; the resource model calls it for every candidate."""
    r = np.asarray(reals, np.float64).ravel()
    bad = ~np.isfinite(r)
    if bad.any():
        quantize_multiplier(float(r[bad][0]))  # raises with its message
    q, shift = np.frexp(r)
    scaled = q * float(1 << 31)
    q_fixed = np.copysign(np.floor(np.abs(scaled) + 0.5), scaled).astype(np.int64)
    top = q_fixed == (1 << 31)
    q_fixed = np.where(top, q_fixed // 2, q_fixed)
    shift = shift.astype(np.int64) + top
    tiny = shift < -31
    q_fixed, shift = np.where(tiny, 0, q_fixed), np.where(tiny, 0, shift)
    if (shift > MAX_MULTIPLIER_SHIFT).any():
        quantize_multiplier(float(r[shift > MAX_MULTIPLIER_SHIFT][0]))  # raises with its message
    return q_fixed.astype(np.int32), shift.astype(np.int32)


def activation_range(activation: str, scale: float, zero_point: int,
                     qmin: int = -128, qmax: int = 127) -> tuple[int, int]:
    """TFLite's CalculateActivationRangeQuantized: fused activation limits in the output's units.

    The division is float32 (f / scale with float scale) and the rounding is std::round.
    """
    def quantize(f: float) -> int:
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            real = float(np.float32(f) / np.float32(scale))
        if not math.isfinite(real) or not INT32_MIN <= tflite_round(real) <= INT32_MAX:
            # TFLM refuses such a model in Prepare
            raise UnsupportedError(f"activation {activation}: output scale {scale:g} is too "
                                   "small to express the activation limits in int32")
        return zero_point + tflite_round(real)

    if activation == "NONE":
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, quantize(0.0)), qmax
    if activation == "RELU6":
        return max(qmin, quantize(0.0)), min(qmax, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(qmin, quantize(-1.0)), min(qmax, quantize(1.0))
    raise ValueError(f"unknown activation {activation}")


def multiply_by_quantized_multiplier_64(x: np.ndarray, multiplier: np.ndarray | int,
                                        shift: np.ndarray | int) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplier(int64_t x, int32_t multiplier, int shift), bit for
    bit: the multiplier rounded to Q15, one rounding shift (half up), the result truncated to
    int32 as C's conversion does on two's-complement machines."""
    x = np.asarray(x, np.int64)
    m = np.asarray(multiplier, np.int64)
    total = 15 - np.asarray(shift, np.int64)
    reduced = np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, 0x7FFF)
    return _wrap32((x * reduced + (np.int64(1) << (total - 1))) >> total)
