/**
 * @file te_fixedpoint.h
 * @brief gemmlowp's int32 fixed-point arithmetic (the pieces TFLite's int8 softmax uses).
 *
 * A value in format Q(I) is a raw int32 r standing for r / 2^(31 - I). Each function mirrors the
 * same-named function of tinyengine/fixedpoint.py (the specification) and of gemmlowp's
 * fixedpoint/fixedpoint.h at the revision TFLM pins, bit for bit. gemmlowp's plain additions
 * and subtractions of raw values are done through uint32 here, so that the rare overflow wraps
 * as on the hardware TFLM runs on instead of being undefined behaviour.
 */
#ifndef TE_FIXEDPOINT_H
#define TE_FIXEDPOINT_H

#include "te_common.h"

/** Two's-complement wrapping int32 addition and subtraction. */
static inline int32_t te_fp_add(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static inline int32_t te_fp_sub(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a - (uint32_t)b);
}

/** Q0 x Q0 product (any formats: the integer bits add), gemmlowp's `operator*`. */
static inline int32_t te_fp_mul(int32_t a, int32_t b)
{
    return te_sat_rounding_doubling_high_mul(a, b);
}

/** gemmlowp's RoundingHalfSum: (a + b) / 2 rounded half away from zero. */
static inline int32_t te_fp_rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    return (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
}

/**
 * gemmlowp's SaturatingRoundingMultiplyByPOT: x * 2^exponent, exponent in [-31, 30].
 * Left shifts saturate to INT32_MIN / INT32_MAX, right shifts round half away from zero.
 */
static inline int32_t te_fp_saturating_rounding_multiply_by_pot(int32_t x, int32_t exponent)
{
    int32_t threshold;
    if (exponent == 0) {
        return x;
    }
    if (exponent < 0) {
        return te_rounding_divide_by_pot(x, -exponent);
    }
    threshold = ((int32_t)1 << (31 - exponent)) - 1;
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return te_shift_left(x, exponent);
}

/** gemmlowp's Rescale<dst>(FixedPoint<int32, src>). */
static inline int32_t te_fp_rescale(int32_t x, int32_t src_integer_bits, int32_t dst_integer_bits)
{
    return te_fp_saturating_rounding_multiply_by_pot(x, src_integer_bits - dst_integer_bits);
}

/** exp(a) for a in [-1/4, 0), Q0 in and out: a Taylor polynomial around -1/8. */
static inline int32_t te_fp_exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a)
{
    const int32_t exp_minus_one_eighth = 1895147668; /* exp(-1/8), Q0 */
    const int32_t one_third = 715827883;             /* 1/3, Q0 */
    const int32_t x = te_fp_add(a, 1 << 28);         /* a + 1/8 */
    const int32_t x2 = te_fp_mul(x, x);
    const int32_t x3 = te_fp_mul(x2, x);
    const int32_t x4 = te_fp_mul(x2, x2);
    const int32_t x4_over_4 = te_fp_saturating_rounding_multiply_by_pot(x4, -2);
    /* x^4/24 + x^3/6 + x^2/2 */
    const int32_t poly = te_fp_saturating_rounding_multiply_by_pot(
        te_fp_add(te_fp_mul(te_fp_add(x4_over_4, x3), one_third), x2), -1);
    return te_fp_add(exp_minus_one_eighth, te_fp_mul(exp_minus_one_eighth, te_fp_add(x, poly)));
}

/**
 * gemmlowp's exp_on_negative_values: exp(a) in Q0 for a <= 0 in Q(integer_bits).
 * integer_bits in [0, 29]. The argument splits into a part in [-1/4, 0) (the polynomial) and
 * multiples of 1/4 whose bits select constant factors exp(-2^k), k = -2..4.
 */
static inline int32_t te_fp_exp_on_negative_values(int32_t a, int32_t integer_bits)
{
    /* exp(-2^k) in Q0 for k = -2 .. 4 */
    static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308,
                                      39332535,   720401,     242};
    const int32_t frac_bits = 31 - integer_bits;
    const int32_t quarter = (int32_t)1 << (frac_bits - 2);
    const int32_t a_mod_quarter_minus_quarter = te_fp_sub(a & (quarter - 1), quarter);
    const int32_t remainder = te_fp_sub(a_mod_quarter_minus_quarter, a);
    int32_t result = te_fp_exp_on_interval_between_negative_one_quarter_and_0_excl(
        te_fp_rescale(a_mod_quarter_minus_quarter, integer_bits, 0));
    int32_t k;
    for (k = -2; k <= 4; ++k) {
        if (integer_bits > k &&
            ((uint32_t)remainder & ((uint32_t)1 << (frac_bits + k))) != 0) {
            result = te_fp_mul(result, barrel[k + 2]);
        }
    }
    if (integer_bits > 5 && a < -((int32_t)1 << (36 - integer_bits))) {
        result = 0;
    }
    return a == 0 ? INT32_MAX : result;
}

/**
 * gemmlowp's one_over_one_plus_x_for_x_in_0_1: 1 / (1 + a) for a in [0, 1), Q0 in and out.
 * Three Newton-Raphson steps on the half denominator from the estimate 48/17 - 32/17 * d.
 */
static inline int32_t te_fp_one_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    const int32_t half_denominator = te_fp_rounding_half_sum(a, INT32_MAX);
    const int32_t one_q2 = 1 << 29;
    int32_t x = te_fp_add(1515870810, /* 48/17, Q2 */
                          te_fp_mul(half_denominator, -1010580540 /* -32/17, Q2 */));
    int32_t i;
    for (i = 0; i < 3; ++i) {
        const int32_t one_minus_half_denominator_times_x =
            te_fp_sub(one_q2, te_fp_mul(half_denominator, x));
        x = te_fp_add(x, te_fp_rescale(te_fp_mul(x, one_minus_half_denominator_times_x), 4, 2));
    }
    return te_fp_rescale(x, 1, 0); /* ExactMulByPot<-1> relabels Q2 as Q1, then Q1 -> Q0 */
}

/** Leading zero bits of x (32 for zero), TFLite's CountLeadingZeros. */
static inline int32_t te_fp_count_leading_zeros(uint32_t x)
{
    int32_t n = 0;
    if (x == 0) {
        return 32;
    }
    while ((x & 0x80000000u) == 0) {
        x <<= 1;
        ++n;
    }
    return n;
}

/**
 * TFLite's GetReciprocal: 1/x for positive x in Q(x_integer_bits). Returns shifted_scale in Q0
 * and sets *num_bits_over_unit so that 1/x = shifted_scale / 2^num_bits_over_unit.
 * x must be positive (x <= 0 is outside TFLite's domain too).
 */
static inline int32_t te_fp_get_reciprocal(int32_t x, int32_t x_integer_bits,
                                           int32_t *num_bits_over_unit)
{
    const int32_t headroom_plus_one = te_fp_count_leading_zeros((uint32_t)x);
    const uint32_t shifted = headroom_plus_one < 32 ? (uint32_t)x << headroom_plus_one : 0u;
    *num_bits_over_unit = x_integer_bits - headroom_plus_one;
    return te_fp_one_over_one_plus_x_for_x_in_0_1((int32_t)(shifted - 0x80000000u));
}

#endif /* TE_FIXEDPOINT_H */
