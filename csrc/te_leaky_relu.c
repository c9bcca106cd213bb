#include "te_leaky_relu.h"

/* The parameters are valid for an activation type whose range is [lo, hi]. */
static int te_leaky_relu_valid(const te_leaky_relu_params_t *p, int32_t lo, int32_t hi)
{
    return p->size >= 1 && p->input_zero_point >= lo && p->input_zero_point <= hi &&
           p->output_zero_point >= lo && p->output_zero_point <= hi &&
           p->multiplier_identity >= 0 && p->shift_identity >= -31 && p->shift_identity <= 30 &&
           p->multiplier_alpha != INT32_MIN && p->shift_alpha >= -31 && p->shift_alpha <= 30;
}

/* QuantizeLeakyRelu for one value before the clamp; the same for both types. */
static int32_t te_leaky_relu_one(const te_leaky_relu_params_t *p, int32_t x)
{
    const int32_t v = x - p->input_zero_point;
    int32_t y;
    if (v >= 0) {
        return p->output_zero_point +
               te_multiply_by_quantized_multiplier(v, p->multiplier_identity, p->shift_identity);
    }
    /* A negative alpha: its magnitude is applied, then the sign. */
    y = te_multiply_by_quantized_multiplier(
        v, p->multiplier_alpha < 0 ? -p->multiplier_alpha : p->multiplier_alpha, p->shift_alpha);
    return p->output_zero_point + (p->multiplier_alpha < 0 ? -y : y);
}

te_status_t te_leaky_relu_s8(const te_leaky_relu_params_t *p, const int8_t *input,
                             int8_t *output)
{
    int32_t i;
    if (p == NULL || input == NULL || output == NULL || !te_leaky_relu_valid(p, -128, 127)) {
        return TE_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        output[i] = (int8_t)te_clamp(te_leaky_relu_one(p, input[i]), -128, 127);
    }
    return TE_OK;
}

te_status_t te_leaky_relu_s16(const te_leaky_relu_params_t *p, const int16_t *input,
                              int16_t *output)
{
    int32_t i;
    if (p == NULL || input == NULL || output == NULL ||
        !te_leaky_relu_valid(p, -32768, 32767)) {
        return TE_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        output[i] = (int16_t)te_clamp(te_leaky_relu_one(p, input[i]), -32768, 32767);
    }
    return TE_OK;
}
