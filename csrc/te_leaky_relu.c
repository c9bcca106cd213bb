#include "te_leaky_relu.h"

te_status_t te_leaky_relu_s8(const te_leaky_relu_params_t *p, const int8_t *input,
                             int8_t *output)
{
    int32_t i, alpha_magnitude;
    if (p == NULL || input == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    if (p->size < 1 || p->input_zero_point < -128 || p->input_zero_point > 127 ||
        p->output_zero_point < -128 || p->output_zero_point > 127 ||
        p->multiplier_identity < 0 || p->shift_identity < -31 || p->shift_identity > 30 ||
        p->multiplier_alpha == INT32_MIN || p->shift_alpha < -31 || p->shift_alpha > 30) {
        return TE_ERR_ARG;
    }
    alpha_magnitude = p->multiplier_alpha < 0 ? -p->multiplier_alpha : p->multiplier_alpha;
    for (i = 0; i < p->size; ++i) {
        const int32_t v = (int32_t)input[i] - p->input_zero_point;
        int32_t y;
        if (v >= 0) {
            y = te_multiply_by_quantized_multiplier(v, p->multiplier_identity, p->shift_identity);
        } else {
            y = te_multiply_by_quantized_multiplier(v, alpha_magnitude, p->shift_alpha);
            y = p->multiplier_alpha < 0 ? -y : y;
        }
        output[i] = (int8_t)te_clamp(p->output_zero_point + y, -128, 127);
    }
    return TE_OK;
}
