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

te_status_t te_softmax_s8(const te_softmax_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t row, c;
    if (p == NULL || input == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    if (p->outer < 0 || p->depth < 1 || p->input_multiplier <= 0 || p->input_left_shift < 0 ||
        p->input_left_shift > 31 || p->diff_min > 0) {
        return TE_ERR_ARG;
    }
    for (row = 0; row < p->outer; ++row) {
        const int8_t *in = input + (size_t)row * (size_t)p->depth;
        int8_t *out = output + (size_t)row * (size_t)p->depth;
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
        exponent = num_bits_over_unit + 31 - 8;
        if (exponent < 0 || exponent > 31) {
            return TE_ERR_ARG;
        }
        /* In place is safe: out[c] is written only after in[c] was read for the last time. */
        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)in[c] - max_in_row;
            int32_t y = -128;
            if (diff >= p->diff_min) {
                const int32_t prob = te_rounding_divide_by_pot(
                    te_fp_mul(shifted_scale, te_softmax_exp(p, diff)), exponent);
                y = te_clamp(prob - 128, -128, 127);
            }
            out[c] = (int8_t)y;
        }
    }
    return TE_OK;
}
