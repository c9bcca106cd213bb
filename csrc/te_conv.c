#include "te_conv.h"

static te_status_t te_conv2d_check(const te_conv2d_params_t *p, const int8_t *input,
                                   const int8_t *filter, const int8_t *output)
{
    if (p == NULL || input == NULL || filter == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    if (p->groups < 1 || p->input.c != p->filter.c * p->groups ||
        p->output.c % p->groups != 0 || p->output.c != p->filter.n ||
        p->input.n != p->output.n || p->stride_h < 1 || p->stride_w < 1 ||
        p->dilation_h < 1 || p->dilation_w < 1) {
        return TE_ERR_ARG;
    }
    return TE_OK;
}

te_status_t te_conv2d_s8(const te_conv2d_params_t *p, const int8_t *input, const int8_t *filter,
                         const int32_t *bias, int8_t *output)
{
    int32_t b, oy, ox, oc, ky, kx, ic;
    int32_t group_out;
    const te_status_t st = te_conv2d_check(p, input, filter, output);
    if (st != TE_OK) {
        return st;
    }
    group_out = p->output.c / p->groups; /* output channels per group */
    for (b = 0; b < p->output.n; ++b) {
        for (oy = 0; oy < p->output.h; ++oy) {
            const int32_t in_y0 = oy * p->stride_h - p->pad_h;
            for (ox = 0; ox < p->output.w; ++ox) {
                const int32_t in_x0 = ox * p->stride_w - p->pad_w;
                for (oc = 0; oc < p->output.c; ++oc) {
                    /* The group's first input channel. */
                    const int32_t ic0 = (oc / group_out) * p->filter.c;
                    int32_t acc = 0;
                    for (ky = 0; ky < p->filter.h; ++ky) {
                        const int32_t in_y = in_y0 + ky * p->dilation_h;
                        if (in_y < 0 || in_y >= p->input.h) {
                            continue;
                        }
                        for (kx = 0; kx < p->filter.w; ++kx) {
                            const int32_t in_x = in_x0 + kx * p->dilation_w;
                            const int8_t *in_px;
                            const int8_t *f_px;
                            if (in_x < 0 || in_x >= p->input.w) {
                                continue;
                            }
                            in_px = input + ((b * p->input.h + in_y) * p->input.w + in_x) * p->input.c +
                                    ic0;
                            f_px = filter + ((oc * p->filter.h + ky) * p->filter.w + kx) * p->filter.c;
                            for (ic = 0; ic < p->filter.c; ++ic) {
                                acc += ((int32_t)in_px[ic] + p->q.input_offset) * (int32_t)f_px[ic];
                            }
                        }
                    }
                    if (bias != NULL) {
                        acc += bias[oc];
                    }
                    acc = te_requantize(&p->rq, oc, acc) + p->q.output_offset;
                    output[((b * p->output.h + oy) * p->output.w + ox) * p->output.c + oc] =
                        (int8_t)te_clamp(acc, p->q.act_min, p->q.act_max);
                }
            }
        }
    }
    return TE_OK;
}

static int te_conv2d_is_pointwise(const te_conv2d_params_t *p)
{
    return p->groups == 1 && p->filter.h == 1 && p->filter.w == 1 && p->stride_h == 1 &&
           p->stride_w == 1 && p->pad_h == 0 && p->pad_w == 0 && p->input.h == p->output.h &&
           p->input.w == p->output.w;
}

/* One output pixel of a pointwise convolution: out[oc] for oc < output.c. */
static void te_conv2d_1x1_pixel(const te_conv2d_params_t *p, const int8_t *in_px,
                                const int8_t *filter, const int32_t *bias, int8_t *out)
{
    int32_t oc, ic;
    for (oc = 0; oc < p->output.c; ++oc) {
        const int8_t *f_row = filter + oc * p->filter.c;
        int32_t acc = 0;
        for (ic = 0; ic < p->input.c; ++ic) {
            acc += ((int32_t)in_px[ic] + p->q.input_offset) * (int32_t)f_row[ic];
        }
        if (bias != NULL) {
            acc += bias[oc];
        }
        acc = te_requantize(&p->rq, oc, acc) + p->q.output_offset;
        out[oc] = (int8_t)te_clamp(acc, p->q.act_min, p->q.act_max);
    }
}

int32_t te_conv2d_1x1_inplace_get_buffer_size(const te_conv2d_params_t *p)
{
    return p->output.c;
}

te_status_t te_conv2d_1x1_inplace_s8(const te_conv2d_params_t *p, const int8_t *input,
                                     const int8_t *filter, const int32_t *bias, int8_t *output,
                                     int8_t *scratch)
{
    int32_t i, c, n_px;
    const te_status_t st = te_conv2d_check(p, input, filter, output);
    if (st != TE_OK) {
        return st;
    }
    if (!te_conv2d_is_pointwise(p)) {
        return TE_ERR_ARG;
    }
    if (scratch == NULL) {
        return TE_ERR_SCRATCH;
    }
    n_px = p->output.n * p->output.h * p->output.w;
    for (i = 0; i < n_px; ++i) {
        const int32_t px = p->output.c <= p->input.c ? i : n_px - 1 - i;
        te_conv2d_1x1_pixel(p, input + px * p->input.c, filter, bias, scratch);
        for (c = 0; c < p->output.c; ++c) {
            output[px * p->output.c + c] = scratch[c];
        }
    }
    return TE_OK;
}

te_status_t te_conv2d_1x1_s8(const te_conv2d_params_t *p, const int8_t *input,
                             const int8_t *filter, const int32_t *bias, int8_t *output)
{
    int32_t px, n_px;
    const te_status_t st = te_conv2d_check(p, input, filter, output);
    if (st != TE_OK) {
        return st;
    }
    if (!te_conv2d_is_pointwise(p)) {
        return TE_ERR_ARG;
    }
    /* Outside padding and strides a pointwise convolution is a matrix product over pixels. */
    n_px = p->output.n * p->output.h * p->output.w;
    for (px = 0; px < n_px; ++px) {
        te_conv2d_1x1_pixel(p, input + px * p->input.c, filter, bias,
                            output + px * p->output.c);
    }
    return TE_OK;
}
