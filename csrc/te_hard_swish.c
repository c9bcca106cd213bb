#include "te_hard_swish.h"

#define TE_INT16_MIN (-32768)
#define TE_INT16_MAX 32767

/** gemmlowp's int16 SaturatingRoundingDoublingHighMul; a and b in int16's range. */
static int32_t te_hs_rounding_high_mul(int32_t a, int32_t b)
{
    int32_t ab;
    if (a == TE_INT16_MIN && b == TE_INT16_MIN) {
        return TE_INT16_MAX;
    }
    ab = a * b; /* |ab| <= 2^30 */
    return (ab + (ab >= 0 ? (1 << 14) : (1 - (1 << 14)))) / (1 << 15);
}

/** TFLite's SaturatingDoublingHighMul: as above but truncating toward zero. */
static int32_t te_hs_high_mul(int32_t a, int32_t b)
{
    if (a == TE_INT16_MIN && b == TE_INT16_MIN) {
        return TE_INT16_MAX;
    }
    return (a * b) / (1 << 15);
}

/** TFLite's SaturatingLeftShift on int16; amount in [0, 30]. */
static int32_t te_hs_saturating_left_shift(int32_t v, int32_t amount)
{
    const int64_t r = (int64_t)v * ((int64_t)1 << amount);
    return r > TE_INT16_MAX ? TE_INT16_MAX : (r < TE_INT16_MIN ? TE_INT16_MIN : (int32_t)r);
}

/** Two's-complement wrap to int16, as the assignment to TFLite's int16_t accumulator. */
static int32_t te_hs_wrap16(int32_t x)
{
    return (int32_t)(((uint32_t)x + 32768u) & 0xFFFFu) - 32768;
}

te_status_t te_hard_swish_s8(const te_hard_swish_params_t *p, const int8_t *input,
                             int8_t *output)
{
    int32_t i;
    if (p == NULL || input == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    if (p->size < 1 || p->input_zero_point < -128 || p->input_zero_point > 127 ||
        p->output_zero_point < -128 || p->output_zero_point > 127 ||
        p->output_multiplier < 0 || p->output_multiplier > TE_INT16_MAX ||
        p->output_exponent < -15 || p->output_exponent > 0 || p->reluish_multiplier < 0 ||
        p->reluish_multiplier > TE_INT16_MAX || p->reluish_exponent < -15 ||
        p->reluish_exponent > 31) {
        return TE_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        const int32_t hires = ((int32_t)input[i] - p->input_zero_point) * 128;
        const int32_t preshift_out = te_hs_rounding_high_mul(hires, p->output_multiplier);
        int32_t r = hires;
        int32_t y;
        if (p->reluish_exponent > 0) {
            r = te_hs_saturating_left_shift(r, p->reluish_exponent - 1);
        }
        r = te_hs_rounding_high_mul(r, p->reluish_multiplier);
        if (p->reluish_exponent > 0) {
            r = te_hs_saturating_left_shift(r, 1);
        }
        if (p->reluish_exponent < 0) {
            r = te_rounding_divide_by_pot(r, -p->reluish_exponent);
        }
        r = (r + (1 << 15)) >> 1; /* r + 2^15 >= 0 */
        y = te_rounding_divide_by_pot(te_hs_high_mul(r, preshift_out), -p->output_exponent);
        output[i] = (int8_t)te_clamp(te_hs_wrap16(y + p->output_zero_point), -128, 127);
    }
    return TE_OK;
}
