#include "te_logistic_tanh.h"

static te_status_t te_lut_s8(const te_lut_params_t *p, const int8_t *input, const int8_t *table,
                             int8_t *output)
{
    int32_t i;
    if (p == NULL || input == NULL || table == NULL || output == NULL || p->size < 1) {
        return TE_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        output[i] = table[(int32_t)input[i] + 128];
    }
    return TE_OK;
}

te_status_t te_logistic_s8(const te_lut_params_t *p, const int8_t *input, const int8_t *table,
                           int8_t *output)
{
    return te_lut_s8(p, input, table, output);
}

te_status_t te_tanh_s8(const te_lut_params_t *p, const int8_t *input, const int8_t *table,
                       int8_t *output)
{
    return te_lut_s8(p, input, table, output);
}

static int te_sigmoid16_valid(const te_sigmoid16_params_t *p, const int16_t *input,
                              const uint16_t *table, const int16_t *output)
{
    return p != NULL && input != NULL && table != NULL && output != NULL && p->size >= 1 &&
           p->input_multiplier >= 1 && p->input_multiplier <= 32767 && p->input_shift >= 0 &&
           p->input_shift <= 31;
}

/* x rescaled so that 1.0 is 3 * 2^12: |x * m| < 2^30 and the rounding term <= 2^30 keep the
 * sum within int32. */
static int32_t te_sigmoid16_input(const te_sigmoid16_params_t *p, int16_t x)
{
    const int32_t rounding = p->input_shift > 0 ? (int32_t)1 << (p->input_shift - 1) : 0;
    return ((int32_t)x * p->input_multiplier + rounding) >> p->input_shift;
}

/* The table at magnitude / 2^bits, interpolated in the low `bits` bits, scaled by 2^bits.
 * The caller handles indices of 255 and beyond. */
static uint32_t te_sigmoid16_interpolate(const uint16_t *table, uint32_t magnitude, int bits)
{
    const uint32_t index = magnitude >> bits;
    const uint32_t lo = table[index];
    const uint32_t hi = table[index + 1];
    return (lo << bits) + (magnitude & ((1u << bits) - 1u)) * (hi - lo);
}

te_status_t te_logistic_s16(const te_sigmoid16_params_t *p, const int16_t *input,
                            const uint16_t *table, int16_t *output)
{
    int32_t i;
    if (!te_sigmoid16_valid(p, input, table, output)) {
        return TE_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        const int32_t v = te_sigmoid16_input(p, input[i]);
        const uint32_t magnitude = (uint32_t)(v < 0 ? -v : v);
        uint32_t r = (magnitude >> 9) >= 255u ? (uint32_t)0x7FFF << 10
                                               : te_sigmoid16_interpolate(table, magnitude, 9);
        /* sigmoid(-x) = 1 - sigmoid(x), in Q0.25 before the shift; r <= 2^25 - 512. */
        r = v >= 0 ? r + (1u << 9) : (1u << 25) - r + (1u << 9) - 1u;
        output[i] = (int16_t)(r >> 10);
    }
    return TE_OK;
}

te_status_t te_tanh_s16(const te_sigmoid16_params_t *p, const int16_t *input,
                        const uint16_t *table, int16_t *output)
{
    int32_t i;
    if (!te_sigmoid16_valid(p, input, table, output)) {
        return TE_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        const int32_t v = te_sigmoid16_input(p, input[i]);
        const uint32_t magnitude = (uint32_t)(v < 0 ? -v : v);
        const int32_t r = (int32_t)((magnitude >> 8) >= 255u
                                        ? (uint32_t)0xFFFF << 8
                                        : te_sigmoid16_interpolate(table, magnitude, 8));
        /* tanh(x) = 2 sigmoid(2x) - 1, mirrored for x < 0; |r| < 2^24. */
        const int32_t t = v >= 0 ? r - (1 << 23) + (1 << 7) : -r + (1 << 23) + (1 << 7) - 1;
        output[i] = (int16_t)(t >> 8);
    }
    return TE_OK;
}
