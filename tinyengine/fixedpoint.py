"""gemmlowp's int32 fixed-point arithmetic, vectorised in numpy. The specification for softmax.

A value in format Q(I) (gemmlowp's `FixedPoint<int32_t, I>`) is a raw int32 r that stands for
r / 2^(31 - I). Each function here mirrors the same-named one of gemmlowp's fixedpoint/fixedpoint.h
(the revision TFLM pins, 719139ce) for scalar int32, bit for bit, and csrc/te_fixedpoint.h holds
the C twins. Values travel as int64 arrays holding int32 values. gemmlowp's plain `+` and `-` on
raw values are C++ signed additions; they are wrapped to int32 here (and computed through uint32
in C) so that the rare overflow behaves as the two's-complement hardware TFLM runs on.

Only the pieces TFLite's quantised softmax uses are here: exp on negative values, 1/(1+x) on
[0, 1), the saturating rescale between formats and TFLite's GetReciprocal.
"""

from __future__ import annotations

import numpy as np

from . import quant
from .quant import INT32_MAX, INT32_MIN, _wrap32, rounding_divide_by_pot


def _i64(x: np.ndarray | int) -> np.ndarray:
    return np.asarray(x, np.int64)


def add(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """gemmlowp's Add on int32 raws: two's-complement wrap-around."""
    return _wrap32(_i64(a) + _i64(b))


def sub(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    return _wrap32(_i64(a) - _i64(b))


def mul(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """gemmlowp's operator* on FixedPoint: SaturatingRoundingDoublingHighMul of the raws (the
    integer bits of the formats add). Halves round up, and only MIN * MIN saturates."""
    return quant.saturating_rounding_doubling_high_mul(_i64(a), b)


def one(integer_bits: int) -> int:
    """FixedPoint<int32, I>::One(): INT32_MAX in Q0 (1.0 itself does not fit), else 2^(31-I)."""
    return INT32_MAX if integer_bits == 0 else 1 << (31 - integer_bits)


def rounding_half_sum(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """gemmlowp's RoundingHalfSum: (a + b + sign(a + b)) / 2 in int64, truncating division."""
    s = _i64(a) + _i64(b)
    t = s + np.where(s >= 0, 1, -1)
    return (np.sign(t) * (np.abs(t) // 2)).astype(np.int64)


def saturating_rounding_multiply_by_pot(x: np.ndarray | int, exponent: int) -> np.ndarray:
    """gemmlowp's SaturatingRoundingMultiplyByPOT<exponent>: x * 2^exponent.

    A left shift saturates to INT32_MIN/INT32_MAX; a right shift rounds half away from zero.
    """
    x = _i64(x)
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX,
                    np.where(x < -threshold, INT32_MIN, x << exponent)).astype(np.int64)


def rescale(x: np.ndarray | int, src_integer_bits: int, dst_integer_bits: int) -> np.ndarray:
    """gemmlowp's Rescale<dst>(FixedPoint<int32, src>): change format, saturating and rounding."""
    return saturating_rounding_multiply_by_pot(x, src_integer_bits - dst_integer_bits)


# Constants of gemmlowp's polynomial and barrel shifter, as raw Q0 (or Q2) int32 values.
EXP_MINUS_ONE_EIGHTH = 1895147668  # exp(-1/8) in Q0
ONE_THIRD = 715827883  # 1/3 in Q0
# exp(-2^k) in Q0 for k = -2 .. 4: the factors applied for each set bit of the integer part.
EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
              (2, 39332535), (3, 720401), (4, 242))
FORTY_EIGHT_OVER_SEVENTEEN = 1515870810  # 48/17 in Q2
MINUS_THIRTY_TWO_OVER_SEVENTEEN = -1010580540  # -32/17 in Q2


def exp_on_interval_between_negative_one_quarter_and_0_excl(a: np.ndarray) -> np.ndarray:
    """exp(a) for a in [-1/4, 0), Q0 in and out: a Taylor polynomial around -1/8."""
    x = add(a, 1 << 28)  # a + 1/8
    x2 = mul(x, x)
    x3 = mul(x2, x)
    x4 = mul(x2, x2)
    x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2)
    poly = saturating_rounding_multiply_by_pot(
        add(mul(add(x4_over_4, x3), ONE_THIRD), x2), -1)  # x^4/24 + x^3/6 + x^2/2
    return add(EXP_MINUS_ONE_EIGHTH, mul(EXP_MINUS_ONE_EIGHTH, add(x, poly)))


def exp_on_negative_values(a: np.ndarray | int, integer_bits: int) -> np.ndarray:
    """gemmlowp's exp_on_negative_values: exp(a) in Q0 for a <= 0 in Q(integer_bits).

    The argument splits into a part in [-1/4, 0) (the polynomial) and multiples of 1/4, whose
    bits select constant factors exp(-2^k). exp(0) is exactly One() (INT32_MAX); for
    integer_bits > 5 arguments below -32 give 0.
    """
    a = _i64(a)
    frac_bits = 31 - integer_bits
    quarter = 1 << (frac_bits - 2)
    a_mod_quarter_minus_quarter = sub(a & (quarter - 1), quarter)
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        rescale(a_mod_quarter_minus_quarter, integer_bits, 0))
    remainder = sub(a_mod_quarter_minus_quarter, a)
    for exponent, multiplier in EXP_BARREL:
        if integer_bits > exponent:
            bit = 1 << (frac_bits + exponent)
            result = np.where(remainder & bit, mul(result, multiplier), result)
    if integer_bits > 5:
        result = np.where(a < -(1 << (36 - integer_bits)), 0, result)
    return np.where(a == 0, one(0), result).astype(np.int64)


def one_over_one_plus_x_for_x_in_0_1(a: np.ndarray | int) -> np.ndarray:
    """gemmlowp's 1 / (1 + a) for a in [0, 1), Q0 in and out: three Newton-Raphson steps on the
    half denominator, starting from the linear estimate 48/17 - 32/17 * d."""
    half_denominator = rounding_half_sum(a, one(0))
    x = add(FORTY_EIGHT_OVER_SEVENTEEN, mul(half_denominator, MINUS_THIRTY_TWO_OVER_SEVENTEEN))
    for _ in range(3):
        one_minus_half_denominator_times_x = sub(one(2), mul(half_denominator, x))
        x = add(x, rescale(mul(x, one_minus_half_denominator_times_x), 4, 2))
    return rescale(x, 1, 0)  # ExactMulByPot<-1> relabels Q2 as Q1, then Q1 -> Q0


def count_leading_zeros(x: np.ndarray | int) -> np.ndarray:
    """Leading zero bits of x as uint32 (32 for zero), as TFLite's CountLeadingZeros."""
    u = _i64(x) & 0xFFFFFFFF
    bits = np.zeros(u.shape, np.int64)
    nz = u != 0
    # frexp is exact here: every uint32 is a float64, and the exponent is the bit length.
    bits[nz] = np.frexp(u[nz].astype(np.float64))[1]
    return (32 - bits).astype(np.int64)


def get_reciprocal(x: np.ndarray | int, x_integer_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLite's GetReciprocal: 1/x for positive x in Q(x_integer_bits).

    Returns (shifted_scale, num_bits_over_unit) with 1/x = shifted_scale (Q0) /
    2^num_bits_over_unit: x is first normalised into [1, 2) by a left shift.
    """
    x = _i64(x)
    headroom_plus_one = count_leading_zeros(x)
    num_bits_over_unit = x_integer_bits - headroom_plus_one
    shifted = ((x & 0xFFFFFFFF) << headroom_plus_one) & 0xFFFFFFFF
    shifted_sum_minus_one = _wrap32(shifted - (1 << 31))
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit
