#include "te_activations.h"

te_status_t te_relu_s8(const te_relu_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t i;
    if (p == NULL || input == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    if (p->size < 1 || p->input_zero_point < -128 || p->input_zero_point > 127 ||
        p->output_zero_point < -128 || p->output_zero_point > 127 || p->multiplier < 0 ||
        p->shift < -31 || p->shift > 30 || p->act_min < -128 || p->act_max > 127 ||
        p->act_min > p->act_max) {
        return TE_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        const int32_t y = p->output_zero_point +
                          te_multiply_by_quantized_multiplier(
                              (int32_t)input[i] - p->input_zero_point, p->multiplier, p->shift);
        output[i] = (int8_t)te_clamp(y, p->act_min, p->act_max);
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
