#include "te_prelu.h"

static int te_prelu_dim_ok(int32_t a, int32_t x)
{
    return x >= 1 && (a == 1 || a == x);
}

te_status_t te_prelu_s8(const te_prelu_params_t *p, const int8_t *input, const int8_t *alpha,
                        int8_t *output)
{
    int32_t stride[4];
    int32_t n, h, w, c, i;
    if (p == NULL || input == NULL || alpha == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    if (!te_prelu_dim_ok(p->alpha.n, p->input.n) || !te_prelu_dim_ok(p->alpha.h, p->input.h) ||
        !te_prelu_dim_ok(p->alpha.w, p->input.w) || !te_prelu_dim_ok(p->alpha.c, p->input.c) ||
        p->input_offset < -127 || p->input_offset > 128 || p->alpha_offset < -127 ||
        p->alpha_offset > 128 || p->output_offset < -128 || p->output_offset > 127 ||
        p->multiplier_identity < 0 || p->shift_identity < -31 || p->shift_identity > 30 ||
        p->multiplier_alpha < 0 || p->shift_alpha < -31 || p->shift_alpha > 30) {
        return TE_ERR_ARG;
    }
    /* Element strides of alpha over the input's n, h, w, c; 0 along a broadcast dimension. */
    stride[3] = p->alpha.c == 1 ? 0 : 1;
    stride[2] = p->alpha.w == 1 ? 0 : p->alpha.c;
    stride[1] = p->alpha.h == 1 ? 0 : p->alpha.w * p->alpha.c;
    stride[0] = p->alpha.n == 1 ? 0 : p->alpha.h * p->alpha.w * p->alpha.c;
    i = 0;
    for (n = 0; n < p->input.n; ++n) {
        for (h = 0; h < p->input.h; ++h) {
            for (w = 0; w < p->input.w; ++w) {
                const int8_t *a_row = alpha + n * stride[0] + h * stride[1] + w * stride[2];
                for (c = 0; c < p->input.c; ++c, ++i) {
                    const int32_t v = (int32_t)input[i] + p->input_offset;
                    int32_t y;
                    if (v >= 0) {
                        y = te_multiply_by_quantized_multiplier(v, p->multiplier_identity,
                                                                p->shift_identity);
                    } else {
                        const int32_t a = (int32_t)a_row[c * stride[3]] + p->alpha_offset;
                        y = te_multiply_by_quantized_multiplier(v * a, p->multiplier_alpha,
                                                                p->shift_alpha);
                    }
                    output[i] = (int8_t)te_clamp(y + p->output_offset, -128, 127);
                }
            }
        }
    }
    return TE_OK;
}
