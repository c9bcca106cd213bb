/**
 * @file te_requant16.h
 * @brief Requantisation of the 16x8 kernels (int16 activations, int8 weights).
 *
 * TFLM sums a 16x8 convolution in int64 (int64 bias) and requantises it with the int64 overload
 * of MultiplyByQuantizedMultiplier, whose rounding differs from the int32 one's: the Q31
 * multiplier is first rounded to Q15, then one rounding shift (half towards +inf) replaces the
 * int32 rule's two (half away from zero). tinyengine/ops/requant16.py is the specification; the
 * functions here are its C twins, bit for bit. Shifts of negative int64 are arithmetic on every
 * compiler we target (GCC and Clang document it), as te_common.h assumes for int32.
 */
#ifndef TE_REQUANT16_H
#define TE_REQUANT16_H

#include "te_common.h"

/** The largest shift te_multiply_by_quantized_multiplier_s64 takes (it shifts by 15 - shift). */
#define TE_S64_MAX_SHIFT 14

/** An int64 value truncated to its low 32 bits, as C's conversion does on two's-complement
 * machines, written without implementation-defined conversions. */
static inline int32_t te_wrap32_s64(int64_t x)
{
    const uint32_t u = (uint32_t)((uint64_t)x & 0xFFFFFFFFu);
    return u <= (uint32_t)INT32_MAX ? (int32_t)u : (int32_t)(u - 0x80000000u) + INT32_MIN;
}

/**
 * TFLite's MultiplyByQuantizedMultiplier(int64_t x, int32_t multiplier, int shift).
 * Domain: multiplier >= 0, shift <= TE_S64_MAX_SHIFT; TFLM's |x| < 2^47 keeps the product in
 * int64 (outside it the product wraps here, where TFLM's is undefined).
 */
static inline int32_t te_multiply_by_quantized_multiplier_s64(int64_t x, int32_t multiplier,
                                                              int32_t shift)
{
    const int64_t reduced = multiplier < 0x7FFF0000 ? (multiplier + (1 << 15)) >> 16 : 0x7FFF;
    const int32_t total_shift = 15 - shift;
    const uint64_t sum = (uint64_t)x * (uint64_t)reduced + ((uint64_t)1 << (total_shift - 1));
    const int64_t product = sum <= (uint64_t)INT64_MAX ? (int64_t)sum
                                                       : (int64_t)(sum - (uint64_t)INT64_MAX - 1u) +
                                                             INT64_MIN;
    return te_wrap32_s64(product >> total_shift);
}

/** Requantise an int64 accumulator of output channel `channel` (the int64 rule). */
static inline int32_t te_requantize_s64(const te_requant_t *rq, int32_t channel, int64_t acc)
{
    const int32_t i = rq->per_channel ? channel : 0;
    return te_multiply_by_quantized_multiplier_s64(acc, rq->multiplier[i], rq->shift[i]);
}

/** Whether `rq` lies in the int64 rule's domain for `channels` output channels: multipliers
 * >= 0 and shifts in [-31, TE_S64_MAX_SHIFT]. */
static inline int te_requant_s64_ok(const te_requant_t *rq, int32_t channels)
{
    const int32_t n = rq->per_channel ? channels : 1;
    int32_t i;
    if (rq->multiplier == NULL || rq->shift == NULL) {
        return 0;
    }
    for (i = 0; i < n; ++i) {
        if (rq->multiplier[i] < 0 || rq->shift[i] < -31 || rq->shift[i] > TE_S64_MAX_SHIFT) {
            return 0;
        }
    }
    return 1;
}

/** Whether the quantisation parameters of a 16x8 kernel are valid: no offsets (symmetric int16)
 * and clamp limits inside int16. */
static inline int te_quant_s16_ok(const te_quant_t *q)
{
    return q->input_offset == 0 && q->output_offset == 0 && q->act_min >= INT16_MIN &&
           q->act_max <= INT16_MAX && q->act_min <= q->act_max;
}

/** An int32 sum wrapped like TFLM's int32 accumulator (two's complement), from the exact one. */
static inline int32_t te_acc32_s16(int64_t exact)
{
    return te_wrap32_s64(exact);
}

#endif /* TE_REQUANT16_H */
