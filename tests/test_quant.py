"""Pins each of TFLite's integer rounding rules with hand-worked values, and checks the C twins
in csrc/te_common.h against the numpy specification on random int32 values."""

import numpy as np
import pytest

from tinyengine import quant
from tinyengine.quant import INT32_MAX, INT32_MIN

from . import ckernels


@pytest.mark.parametrize("x, e, want", [
    (5, 1, 3), (-5, 1, -3),    # 2.5 -> 3 and -2.5 -> -3: halves go away from zero
    (3, 1, 2), (-3, 1, -2),    # 1.5 -> 2, -1.5 -> -2
    (6, 2, 2), (-6, 2, -2),    # 1.5, -1.5
    (5, 2, 1), (-5, 2, -1),    # 1.25 -> 1, -1.25 -> -1
    (7, 2, 2), (-7, 2, -2),    # 1.75 -> 2
    (4, 0, 4), (INT32_MIN, 31, -1), (INT32_MAX, 31, 1),
])
def test_rounding_divide_by_pot(x, e, want):
    assert int(quant.rounding_divide_by_pot(x, e)) == want


@pytest.mark.parametrize("a, b, want", [
    (INT32_MIN, INT32_MIN, INT32_MAX),  # the one product that saturates
    (1 << 30, 1 << 30, 1 << 29),        # 0.5 * 0.5 in Q31
    (3, 1 << 30, 2),                    # 1.5 rounds up
    (-3, 1 << 30, -1),                  # -1.5 rounds to -1: gemmlowp's nudge then truncation
    (-1, 1 << 30, 0),
    (INT32_MAX, INT32_MAX, INT32_MAX - 1),
])
def test_saturating_rounding_doubling_high_mul(a, b, want):
    assert int(quant.saturating_rounding_doubling_high_mul(a, b)) == want


def test_multiply_by_quantized_multiplier_rounds_twice_like_tflm():
    # 5 * 0.25 = 1.25: the high-mul rounds 2.5 -> 3, the shift rounds 1.5 -> 2 (single rounding
    # would give 1). TFLM's reference build uses this double rounding; the real models pin it.
    assert int(quant.multiply_by_quantized_multiplier(5, 1 << 30, -1)) == 2
    assert int(quant.multiply_by_quantized_multiplier(100, 1 << 30, 0)) == 50
    assert int(quant.multiply_by_quantized_multiplier(3, 1 << 30, 2)) == 6  # left shift first


@pytest.mark.parametrize("real, want", [
    (0.5, (1 << 30, 0)), (1.0, (1 << 30, 1)), (0.25, (1 << 30, -1)),
    (0.75, (1610612736, 0)), (0.0, (0, 0)),
    (1 - 2.0 ** -40, (1 << 30, 1)),  # rounds to 2^31: halved, shift + 1
    (2.0 ** -40, (0, 0)),            # shift < -31: flushed to zero
])
def test_quantize_multiplier(real, want):
    assert quant.quantize_multiplier(real) == want


@pytest.mark.parametrize("x, want", [(2.5, 3), (-2.5, -3), (0.49999, 0), (-0.5, -1), (1.5, 2)])
def test_tflite_round_is_half_away_from_zero(x, want):
    assert quant.tflite_round(x) == want


def test_activation_range():
    assert quant.activation_range("NONE", 0.05, -128) == (-128, 127)
    assert quant.activation_range("RELU", 0.05, -10) == (-10, 127)
    assert quant.activation_range("RELU6", 0.05, -128) == (-128, -8)  # 6 / 0.05 = 120 steps
    assert quant.activation_range("RELU6", 0.01, 0) == (0, 127)  # clamps at the int8 limit
    assert quant.activation_range("RELU_N1_TO_1", 0.1, 3) == (-7, 13)


_CDEF = """
int32_t te_sat_rounding_doubling_high_mul(int32_t a, int32_t b);
int32_t te_rounding_divide_by_pot(int32_t x, int32_t exponent);
int32_t te_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift);
"""


def test_c_arithmetic_matches_numpy():
    ffi, lib = ckernels.build(["te_common.h"], [], _CDEF)
    rng = np.random.default_rng(7)
    edge = np.array([0, 1, -1, INT32_MIN, INT32_MAX, 1 << 30, -(1 << 30)], np.int64)
    xs = np.concatenate([edge, rng.integers(INT32_MIN, INT32_MAX + 1, 300)])
    ms = np.concatenate([edge, rng.integers(INT32_MIN, INT32_MAX + 1, 300)])
    for x, m in zip(xs, ms):
        assert lib.te_sat_rounding_doubling_high_mul(int(x), int(m)) == \
            quant.saturating_rounding_doubling_high_mul(x, m)
    for x in xs:
        for e in (0, 1, 5, 17, 31):
            assert lib.te_rounding_divide_by_pot(int(x), e) == quant.rounding_divide_by_pot(x, e)
    mults = rng.integers(1 << 30, INT32_MAX, 200)
    shifts = rng.integers(-31, 8, 200)
    small = rng.integers(-(1 << 20), 1 << 20, 200)
    for x, m, s in zip(small, mults, shifts):
        assert lib.te_multiply_by_quantized_multiplier(int(x), int(m), int(s)) == \
            quant.multiply_by_quantized_multiplier(x, m, s)


def test_vectorised_multipliers_equal_the_scalar_rule():
    """quantize_multipliers (numpy, the resource model's hot path) gives exactly what
    quantize_multiplier (TFLite's QuantizeMultiplier) gives, element by element."""
    rng = np.random.default_rng(5)
    reals = np.concatenate([10 ** rng.uniform(-40, 9, 20000), rng.uniform(0, 1, 20000),
                            [0.0, 1.0, 0.5, 2.0**-31, 2.0**-32, 2.0**-33, 2.0**31 - 1,
                             np.nextafter(1.0, 0.0), 5e-324, 0.99999999977]])
    mult, shift = quant.quantize_multipliers(reals)
    for r, m, s in zip(reals, mult, shift):
        assert (int(m), int(s)) == quant.quantize_multiplier(float(r)), r
    with pytest.raises(quant.MultiplierRangeError, match="left shift of 41"):
        quant.quantize_multipliers(np.array([1.0, 2.0**40]))
