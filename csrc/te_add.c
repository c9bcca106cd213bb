#include "te_add.h"

static int te_add_input_ok(const te_add_input_t *in, const te_dims_t *out)
{
    return (in->dims.n == out->n || in->dims.n == 1) && (in->dims.h == out->h || in->dims.h == 1) &&
           (in->dims.w == out->w || in->dims.w == 1) && (in->dims.c == out->c || in->dims.c == 1) &&
           in->offset >= -127 && in->offset <= 128 && in->multiplier >= 0 && in->shift <= 0 &&
           in->shift >= -31;
}

static int te_same_dims(const te_dims_t *a, const te_dims_t *b)
{
    return a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c;
}

/** (x + offset) << left_shift, rescaled into the common domain of the two inputs. */
static int32_t te_add_scale_input(const te_add_input_t *in, int32_t left_shift, int8_t x)
{
    const int32_t shifted = te_shift_left((int32_t)x + in->offset, left_shift);
    return te_multiply_by_quantized_multiplier_smaller_than_one_exp(shifted, in->multiplier,
                                                                    in->shift);
}

static int8_t te_add_one(const te_add_params_t *p, int8_t a, int8_t b)
{
    const int32_t sum = te_add_scale_input(&p->input1, p->left_shift, a) +
                        te_add_scale_input(&p->input2, p->left_shift, b);
    const int32_t y = te_multiply_by_quantized_multiplier_smaller_than_one_exp(
                          sum, p->output_multiplier, p->output_shift) +
                      p->output_offset;
    return (int8_t)te_clamp(y, p->act_min, p->act_max);
}

/** Element strides of an input over the output's n, h, w, c; 0 along a broadcast dimension. */
static void te_add_strides(const te_dims_t *in, const te_dims_t *out, int32_t stride[4])
{
    stride[3] = (in->c == 1 && out->c != 1) ? 0 : 1;
    stride[2] = (in->w == 1 && out->w != 1) ? 0 : in->c;
    stride[1] = (in->h == 1 && out->h != 1) ? 0 : in->w * in->c;
    stride[0] = (in->n == 1 && out->n != 1) ? 0 : in->h * in->w * in->c;
}

te_status_t te_add_s8(const te_add_params_t *p, const int8_t *input1, const int8_t *input2,
                      int8_t *output)
{
    int32_t s1[4], s2[4];
    int32_t n, h, w, c, i;
    if (p == NULL || input1 == NULL || input2 == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    if (p->output.n < 1 || p->output.h < 1 || p->output.w < 1 || p->output.c < 1 ||
        !te_add_input_ok(&p->input1, &p->output) || !te_add_input_ok(&p->input2, &p->output) ||
        p->left_shift < 0 || p->left_shift > 20 || p->output_multiplier < 0 ||
        p->output_shift > 0 || p->output_shift < -31 || p->act_min < -128 || p->act_max > 127 ||
        p->act_min > p->act_max) {
        return TE_ERR_ARG;
    }
    if (te_same_dims(&p->input1.dims, &p->output) && te_same_dims(&p->input2.dims, &p->output)) {
        const int32_t size = p->output.n * p->output.h * p->output.w * p->output.c;
        for (i = 0; i < size; ++i) {
            output[i] = te_add_one(p, input1[i], input2[i]);
        }
        return TE_OK;
    }
    te_add_strides(&p->input1.dims, &p->output, s1);
    te_add_strides(&p->input2.dims, &p->output, s2);
    i = 0;
    for (n = 0; n < p->output.n; ++n) {
        for (h = 0; h < p->output.h; ++h) {
            for (w = 0; w < p->output.w; ++w) {
                const int32_t o1 = n * s1[0] + h * s1[1] + w * s1[2];
                const int32_t o2 = n * s2[0] + h * s2[1] + w * s2[2];
                for (c = 0; c < p->output.c; ++c) {
                    output[i++] = te_add_one(p, input1[o1 + c * s1[3]], input2[o2 + c * s2[3]]);
                }
            }
        }
    }
    return TE_OK;
}
