#include "te_depthwise.h"

static te_status_t te_depthwise_conv_check(const te_depthwise_conv_params_t *p,
                                           const int8_t *input, const int8_t *filter,
                                           const int8_t *output)
{
    if (p == NULL || input == NULL || filter == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    if (p->depth_multiplier < 1 || p->input.n < 1 || p->input.h < 1 || p->input.w < 1 ||
        p->input.c < 1 || p->filter.h < 1 || p->filter.w < 1 || p->output.h < 1 ||
        p->output.w < 1) {
        return TE_ERR_ARG;
    }
    if (p->filter.n != 1 || p->filter.c != p->input.c * p->depth_multiplier ||
        p->output.c != p->filter.c || p->input.n != p->output.n || p->stride_h < 1 ||
        p->stride_w < 1 || p->dilation_h < 1 || p->dilation_w < 1 || p->pad_h < 0 ||
        p->pad_w < 0 || p->rq.multiplier == NULL || p->rq.shift == NULL) {
        return TE_ERR_ARG;
    }
    return TE_OK;
}

te_status_t te_depthwise_conv_s8(const te_depthwise_conv_params_t *p, const int8_t *input,
                                 const int8_t *filter, const int32_t *bias, int8_t *output)
{
    int32_t b, oy, ox, ic, m, ky, kx;
    const te_status_t st = te_depthwise_conv_check(p, input, filter, output);
    if (st != TE_OK) {
        return st;
    }
    for (b = 0; b < p->output.n; ++b) {
        for (oy = 0; oy < p->output.h; ++oy) {
            const int32_t in_y0 = oy * p->stride_h - p->pad_h;
            for (ox = 0; ox < p->output.w; ++ox) {
                const int32_t in_x0 = ox * p->stride_w - p->pad_w;
                for (ic = 0; ic < p->input.c; ++ic) {
                    for (m = 0; m < p->depth_multiplier; ++m) {
                        const int32_t oc = ic * p->depth_multiplier + m;
                        int32_t acc = 0;
                        for (ky = 0; ky < p->filter.h; ++ky) {
                            const int32_t in_y = in_y0 + ky * p->dilation_h;
                            if (in_y < 0 || in_y >= p->input.h) {
                                continue;
                            }
                            for (kx = 0; kx < p->filter.w; ++kx) {
                                const int32_t in_x = in_x0 + kx * p->dilation_w;
                                int32_t in_val, f_val;
                                if (in_x < 0 || in_x >= p->input.w) {
                                    continue;
                                }
                                in_val = input[((b * p->input.h + in_y) * p->input.w + in_x) *
                                                   p->input.c + ic];
                                f_val = filter[(ky * p->filter.w + kx) * p->filter.c + oc];
                                acc += f_val * (in_val + p->q.input_offset);
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
    }
    return TE_OK;
}

te_status_t te_depthwise_conv_3x3_s8(const te_depthwise_conv_params_t *p, const int8_t *input,
                                     const int8_t *filter, const int32_t *bias, int8_t *output)
{
    int32_t b, oy, ox, c, ky, kx, channels, row_stride;
    const te_status_t st = te_depthwise_conv_check(p, input, filter, output);
    if (st != TE_OK) {
        return st;
    }
    if (p->depth_multiplier != 1 || p->filter.h != 3 || p->filter.w != 3 || p->dilation_h != 1 ||
        p->dilation_w != 1 || p->pad_h > 1 || p->pad_w > 1) {
        return TE_ERR_ARG;
    }
    channels = p->input.c;
    row_stride = p->input.w * channels;
    /* With multiplier 1 and dilation 1 the taps that fall inside the image form one rectangle
     * [ky0, ky1) x [kx0, kx1) per output pixel, so the bounds checks leave the channel loop.
     * `origin` is the element offset of tap (0, 0), which may lie outside the image; only the
     * in-image taps are ever read, and offsets stay integers so no pointer leaves the array. */
    for (b = 0; b < p->output.n; ++b) {
        for (oy = 0; oy < p->output.h; ++oy) {
            const int32_t in_y0 = oy * p->stride_h - p->pad_h;
            const int32_t ky0 = in_y0 < 0 ? -in_y0 : 0;
            const int32_t ky1 = p->input.h - in_y0 < 3 ? p->input.h - in_y0 : 3;
            for (ox = 0; ox < p->output.w; ++ox) {
                const int32_t in_x0 = ox * p->stride_w - p->pad_w;
                const int32_t kx0 = in_x0 < 0 ? -in_x0 : 0;
                const int32_t kx1 = p->input.w - in_x0 < 3 ? p->input.w - in_x0 : 3;
                const int32_t origin = ((b * p->input.h + in_y0) * p->input.w + in_x0) * channels;
                int8_t *out_px =
                    output + ((b * p->output.h + oy) * p->output.w + ox) * p->output.c;
                for (c = 0; c < channels; ++c) {
                    int32_t acc = 0;
                    for (ky = ky0; ky < ky1; ++ky) {
                        const int32_t in_row = origin + ky * row_stride + c;
                        const int32_t f_row = ky * 3 * channels + c;
                        for (kx = kx0; kx < kx1; ++kx) {
                            acc += (int32_t)filter[f_row + kx * channels] *
                                   ((int32_t)input[in_row + kx * channels] + p->q.input_offset);
                        }
                    }
                    if (bias != NULL) {
                        acc += bias[c];
                    }
                    acc = te_requantize(&p->rq, c, acc) + p->q.output_offset;
                    out_px[c] = (int8_t)te_clamp(acc, p->q.act_min, p->q.act_max);
                }
            }
        }
    }
    return TE_OK;
}

int32_t te_depthwise_conv_inplace_get_buffer_size(const te_depthwise_conv_params_t *p)
{
    return p->output.h * p->output.w;
}

te_status_t te_depthwise_conv_inplace_s8(const te_depthwise_conv_params_t *p, const int8_t *input,
                                         const int8_t *filter, const int32_t *bias,
                                         int8_t *output, int8_t *scratch)
{
    int32_t b, c, oy, ox, ky, kx, px;
    const te_status_t st = te_depthwise_conv_check(p, input, filter, output);
    if (st != TE_OK) {
        return st;
    }
    if (p->depth_multiplier != 1 || p->input.h != p->output.h || p->input.w != p->output.w ||
        p->input.c != p->output.c) {
        return TE_ERR_ARG;
    }
    if (scratch == NULL) {
        return TE_ERR_SCRATCH;
    }
    for (b = 0; b < p->output.n; ++b) {
        const int32_t base = b * p->input.h * p->input.w * p->input.c;
        for (c = 0; c < p->output.c; ++c) {
            /* Channel c of the output depends on channel c of the input only. */
            for (oy = 0; oy < p->output.h; ++oy) {
                const int32_t in_y0 = oy * p->stride_h - p->pad_h;
                for (ox = 0; ox < p->output.w; ++ox) {
                    const int32_t in_x0 = ox * p->stride_w - p->pad_w;
                    int32_t acc = 0;
                    for (ky = 0; ky < p->filter.h; ++ky) {
                        const int32_t in_y = in_y0 + ky * p->dilation_h;
                        if (in_y < 0 || in_y >= p->input.h) {
                            continue;
                        }
                        for (kx = 0; kx < p->filter.w; ++kx) {
                            const int32_t in_x = in_x0 + kx * p->dilation_w;
                            if (in_x < 0 || in_x >= p->input.w) {
                                continue;
                            }
                            acc += (int32_t)filter[(ky * p->filter.w + kx) * p->filter.c + c] *
                                   ((int32_t)input[base + (in_y * p->input.w + in_x) *
                                                              p->input.c + c] +
                                    p->q.input_offset);
                        }
                    }
                    if (bias != NULL) {
                        acc += bias[c];
                    }
                    acc = te_requantize(&p->rq, c, acc) + p->q.output_offset;
                    scratch[oy * p->output.w + ox] =
                        (int8_t)te_clamp(acc, p->q.act_min, p->q.act_max);
                }
            }
            for (px = 0; px < p->output.h * p->output.w; ++px) {
                output[base + px * p->output.c + c] = scratch[px];
            }
        }
    }
    return TE_OK;
}
