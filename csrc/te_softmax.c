#include "te_softmax.h"

#include "te_fixedpoint.h"

enum {
    TE_SOFTMAX_DIFF_BITS = 5,   /* the exp() argument is Q5.26 */
    TE_SOFTMAX_ACCUM_BITS = 12  /* the sum of exps is Q12.19 */
};

/* exp(x - row_max) in Q0.31, for x - row_max >= diff_min. */
static int32_t te_softmax_exp(const te_softmax_params_t *p, int32_t diff)
{
    const int32_t scaled = te_multiply_by_quantized_multiplier_greater_than_one(
        diff, p->input_multiplier, p->input_left_shift);
    return te_fp_exp_on_negative_values(scaled, TE_SOFTMAX_DIFF_BITS);
}

/* reference_ops::Softmax<int8_t, OutputT> for OutputT of `bits` bits: exactly one of out8
 * (bits 8) and out16 (bits 16) is used. */
static te_status_t te_softmax_from_s8(const te_softmax_params_t *p, const int8_t *input,
                                      int8_t *out8, int16_t *out16, int32_t bits)
{
    const int32_t out_min = -((int32_t)1 << (bits - 1));
    const int32_t out_max = ((int32_t)1 << (bits - 1)) - 1;
    int32_t row, c;
    if (p->outer < 0 || p->depth < 1 || p->input_multiplier <= 0 || p->input_left_shift < 0 ||
        p->input_left_shift > 31 || p->diff_min > 0) {
        return TE_ERR_ARG;
    }
    for (row = 0; row < p->outer; ++row) {
        const size_t base = (size_t)row * (size_t)p->depth;
        const int8_t *in = input + base;
        int32_t max_in_row = -128;
        int32_t sum_of_exps = 0;
        int32_t num_bits_over_unit, shifted_scale, exponent;
        for (c = 0; c < p->depth; ++c) {
            max_in_row = in[c] > max_in_row ? in[c] : max_in_row;
        }
        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)in[c] - max_in_row;
            if (diff >= p->diff_min) {
                sum_of_exps = te_fp_add(sum_of_exps,
                                        te_fp_rescale(te_softmax_exp(p, diff), 0,
                                                      TE_SOFTMAX_ACCUM_BITS));
            }
        }
        if (sum_of_exps <= 0) {
            return TE_ERR_ARG;
        }
        shifted_scale = te_fp_get_reciprocal(sum_of_exps, TE_SOFTMAX_ACCUM_BITS,
                                             &num_bits_over_unit);
        exponent = num_bits_over_unit + 31 - bits;
        if (exponent < 0 || exponent > 31) {
            return TE_ERR_ARG;
        }
        /* In place (int8 only) is safe: out[c] is written only after in[c] was last read. */
        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)in[c] - max_in_row;
            int32_t y = out_min;
            if (diff >= p->diff_min) {
                const int32_t prob = te_rounding_divide_by_pot(
                    te_fp_mul(shifted_scale, te_softmax_exp(p, diff)), exponent);
                y = te_clamp(prob + out_min, out_min, out_max);
            }
            if (out16 != NULL) {
                out16[base + (size_t)c] = (int16_t)y;
            } else {
                out8[base + (size_t)c] = (int8_t)y;
            }
        }
    }
    return TE_OK;
}

te_status_t te_softmax_s8(const te_softmax_params_t *p, const int8_t *input, int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    return te_softmax_from_s8(p, input, output, NULL, 8);
}

te_status_t te_softmax_s8_s16(const te_softmax_params_t *p, const int8_t *input,
                              int16_t *output)
{
    if (p == NULL || input == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    return te_softmax_from_s8(p, input, NULL, output, 16);
}

/* A value in [-32768, 32767] as TFLite's int16_t holds it (two's complement wrap). */
static int32_t te_softmax_wrap16(int32_t x)
{
    return (int32_t)(((uint32_t)x + 32768u) & 0xFFFFu) - 32768;
}

/* TFLite's LUTLookup for int16: the top 9 bits of `value` index the 513-entry table, the low 7
 * interpolate between neighbours. */
static int32_t te_softmax_lut16(const int16_t *lut, int32_t value)
{
    const int32_t index = 256 + (value >> 7);
    const int32_t slope = te_softmax_wrap16((int32_t)lut[index + 1] - (int32_t)lut[index]);
    const int32_t delta = (slope * (value & 0x7F) + 64) >> 7;
    return te_softmax_wrap16((int32_t)lut[index] + delta);
}

te_status_t te_softmax_s16(const te_softmax_s16_params_t *p, const int16_t *input,
                           const int16_t *exp_lut, const int16_t *recip_lut, int16_t *output)
{
    int32_t row, c;
    if (p == NULL || input == NULL || exp_lut == NULL || recip_lut == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    if (p->outer < 0 || p->depth < 1 || p->depth > TE_SOFTMAX_S16_MAX_DEPTH ||
        p->input_multiplier < 0 || p->input_shift < -31 || p->input_shift > 30) {
        return TE_ERR_ARG;
    }
    for (row = 0; row < p->outer; ++row) {
        const int16_t *in = input + (size_t)row * (size_t)p->depth;
        int16_t *out = output + (size_t)row * (size_t)p->depth;
        int32_t max_in_row = -32768;
        int32_t sum = 0; /* Q16.15; at most depth * 32767 */
        int32_t headroom_plus_one, shifted_sum, reciprocal, right_shift;
        int64_t rounding;
        for (c = 0; c < p->depth; ++c) {
            max_in_row = in[c] > max_in_row ? in[c] : max_in_row;
        }
        /* The exps wait in the output row (read in[c], then write out[c]: in place is safe). */
        for (c = 0; c < p->depth; ++c) {
            const int32_t scaled = te_multiply_by_quantized_multiplier(
                (int32_t)in[c] - max_in_row, p->input_multiplier, p->input_shift);
            const int32_t e = te_softmax_lut16(exp_lut, te_clamp(scaled + 32767, -32768, 32767));
            out[c] = (int16_t)e;
            sum += e;
        }
        /* A valid exp table gives the row maximum about 32767, so sum >= 2 and the shifts below
         * stay in [1, 30]. */
        if (sum < 2) {
            return TE_ERR_ARG;
        }
        headroom_plus_one = te_fp_count_leading_zeros((uint32_t)sum);
        shifted_sum = (int32_t)((((int64_t)sum << (headroom_plus_one - 1)) + (1 << 13)) >> 14);
        /* 1 / (1 + x) of x = sum - 1, recentred from [0, 65535] onto [-32768, 32767]. */
        reciprocal = te_softmax_lut16(
            recip_lut, te_clamp(shifted_sum - (1 << 15) - (1 << 16), -32768, 32767));
        right_shift = 31 - headroom_plus_one;
        rounding = (int64_t)1 << (right_shift - 1);
        for (c = 0; c < p->depth; ++c) {
            const int32_t y = (int32_t)(((int64_t)out[c] * reciprocal + rounding) >> right_shift);
            out[c] = (int16_t)te_clamp(y, 0, 32767);
        }
    }
    return TE_OK;
}
