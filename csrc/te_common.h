/**
 * @file te_common.h
 * @brief Shared types and TFLite's integer arithmetic for the tinyengine int8 kernels.
 *
 * Every function here mirrors the same-named function in tinyengine/quant.py (the specification)
 * and in TFLite's reference kernels bit for bit. Shifts of negative numbers go through uint32 so
 * that no expression relies on undefined behaviour; right shifts of negative int32 are arithmetic
 * on every compiler we target (GCC and Clang document it).
 */
#ifndef TE_COMMON_H
#define TE_COMMON_H

#include <stddef.h>
#include <stdint.h>

/** Status returned by every kernel; the generated code stops at the first non-zero one. */
typedef enum {
    TE_OK = 0,
    TE_ERR_ARG = 1,     /**< a null pointer or a parameter outside the kernel's domain */
    TE_ERR_SCRATCH = 2  /**< the caller's scratch buffer is missing or too small */
} te_status_t;

/** NHWC dimensions of an activation or filter tensor. */
typedef struct {
    int32_t n;
    int32_t h;
    int32_t w;
    int32_t c;
} te_dims_t;

/** Requantisation of an int32 accumulator to int8, per channel or per tensor.
 * Shifts are int8_t: TFLite's QuantizeMultiplier gives them in [-31, 31], and a word per channel
 * would waste 3 bytes of flash each. The code generator stores one (multiplier, shift) pair with
 * per_channel 0 where every channel has the same one (tinyengine/ops/common.py). */
typedef struct {
    const int32_t *multiplier; /**< Q31 multipliers, one per output channel (or one) */
    const int8_t *shift;       /**< shifts, same length, in [-31, 31]; > 0 is a left shift */
    int32_t per_channel;       /**< 1: index by output channel, 0: use element 0 */
} te_requant_t;

/** Offsets and clamp limits in the quantised domain. */
typedef struct {
    int32_t input_offset;  /**< minus the input zero point */
    int32_t output_offset; /**< the output zero point */
    int32_t act_min;       /**< fused activation lower limit, >= -128 */
    int32_t act_max;       /**< fused activation upper limit, <= 127 */
} te_quant_t;

static inline int32_t te_sat_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    int64_t ab, nudge;
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    return (int32_t)((ab + nudge) / (1LL << 31));
}

static inline int32_t te_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((1LL << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

static inline int32_t te_shift_left(int32_t x, int32_t left)
{
    return (int32_t)((uint32_t)x << left);
}

static inline int32_t te_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier,
                                                          int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    return te_rounding_divide_by_pot(
        te_sat_rounding_doubling_high_mul(te_shift_left(x, left), multiplier), right);
}

static inline int32_t te_multiply_by_quantized_multiplier_smaller_than_one_exp(
    int32_t x, int32_t multiplier, int32_t left_shift)
{
    return te_rounding_divide_by_pot(te_sat_rounding_doubling_high_mul(x, multiplier), -left_shift);
}

static inline int32_t te_multiply_by_quantized_multiplier_greater_than_one(
    int32_t x, int32_t multiplier, int32_t left_shift)
{
    return te_sat_rounding_doubling_high_mul(te_shift_left(x, left_shift), multiplier);
}

static inline int32_t te_requantize(const te_requant_t *rq, int32_t channel, int32_t acc)
{
    const int32_t i = rq->per_channel ? channel : 0;
    return te_multiply_by_quantized_multiplier(acc, rq->multiplier[i], rq->shift[i]);
}

static inline int32_t te_clamp(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

#endif /* TE_COMMON_H */
