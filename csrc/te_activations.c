#include "te_activations.h"

/* The RELU parameters are valid for an activation type whose range is [lo, hi]. */
static int te_relu_valid(const te_relu_params_t *p, int32_t lo, int32_t hi)
{
    return p->size >= 1 && p->input_zero_point >= lo && p->input_zero_point <= hi &&
           p->output_zero_point >= lo && p->output_zero_point <= hi && p->multiplier >= 0 &&
           p->shift >= -31 && p->shift <= 30 && p->act_min >= lo && p->act_max <= hi &&
           p->act_min <= p->act_max;
}

/* y = clamp(zp_out + MultiplyByQuantizedMultiplier(x - zp_in, m, s)): the same for both types. */
static int32_t te_relu_one(const te_relu_params_t *p, int32_t x)
{
    const int32_t y = p->output_zero_point +
                      te_multiply_by_quantized_multiplier(x - p->input_zero_point, p->multiplier,
                                                          p->shift);
    return te_clamp(y, p->act_min, p->act_max);
}

te_status_t te_relu_s8(const te_relu_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t i;
    if (p == NULL || input == NULL || output == NULL || !te_relu_valid(p, -128, 127)) {
        return TE_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        output[i] = (int8_t)te_relu_one(p, input[i]);
    }
    return TE_OK;
}

te_status_t te_relu_s16(const te_relu_params_t *p, const int16_t *input, int16_t *output)
{
    int32_t i;
    if (p == NULL || input == NULL || output == NULL || !te_relu_valid(p, -32768, 32767)) {
        return TE_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        output[i] = (int16_t)te_relu_one(p, input[i]);
    }
    return TE_OK;
}

te_status_t te_relu6_s8(const te_relu6_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t i;
    if (p == NULL || input == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    if (p->size < 1 || p->lower < -128 || p->upper > 127 || p->lower > p->upper) {
        return TE_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        output[i] = (int8_t)te_clamp(input[i], p->lower, p->upper);
    }
    return TE_OK;
}

te_status_t te_relu6_s16(const te_relu6_params_t *p, const int16_t *input, int16_t *output)
{
    int32_t i;
    if (p == NULL || input == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    if (p->size < 1 || p->lower < -32768 || p->upper > 32767 || p->lower > p->upper) {
        return TE_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        output[i] = (int16_t)te_clamp(input[i], p->lower, p->upper);
    }
    return TE_OK;
}
