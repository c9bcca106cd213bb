#include "te_pool.h"

/* Channels whose sums te_mean_s8 keeps at once; bounds its stack use to 4 * TE_MEAN_BLOCK bytes. */
#define TE_MEAN_BLOCK 16

static int te_dims_valid(const te_dims_t *d)
{
    return d->n >= 1 && d->h >= 1 && d->w >= 1 && d->c >= 1;
}

static te_status_t te_pool_check(const te_pool_params_t *p, const int8_t *input,
                                 const int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    if (!te_dims_valid(&p->input) || !te_dims_valid(&p->output) || p->input.n != p->output.n ||
        p->input.c != p->output.c || p->filter_h < 1 || p->filter_w < 1 || p->stride_h < 1 ||
        p->stride_w < 1 || p->pad_h < 0 || p->pad_w < 0 || p->act_min < -128 ||
        p->act_max > 127 || p->act_min > p->act_max) {
        return TE_ERR_ARG;
    }
    return TE_OK;
}

static int32_t te_max_i32(int32_t a, int32_t b)
{
    return a > b ? a : b;
}

static int32_t te_min_i32(int32_t a, int32_t b)
{
    return a < b ? a : b;
}

te_status_t te_avgpool_s8(const te_avgpool_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t b, oy, ox, ch, fy, fx;
    const te_status_t st = te_pool_check(p, input, output);
    if (st != TE_OK) {
        return st;
    }
    for (b = 0; b < p->output.n; ++b) {
        for (oy = 0; oy < p->output.h; ++oy) {
            const int32_t in_y0 = oy * p->stride_h - p->pad_h;
            const int32_t fy_start = te_max_i32(0, -in_y0);
            const int32_t fy_end = te_min_i32(p->filter_h, p->input.h - in_y0);
            for (ox = 0; ox < p->output.w; ++ox) {
                const int32_t in_x0 = ox * p->stride_w - p->pad_w;
                const int32_t fx_start = te_max_i32(0, -in_x0);
                const int32_t fx_end = te_min_i32(p->filter_w, p->input.w - in_x0);
                const int32_t count = (fy_end - fy_start) * (fx_end - fx_start);
                int8_t *out_px = output + ((b * p->output.h + oy) * p->output.w + ox) * p->output.c;
                if (fy_end <= fy_start || fx_end <= fx_start) {
                    return TE_ERR_ARG; /* TFLite fails on an empty window too */
                }
                for (ch = 0; ch < p->output.c; ++ch) {
                    int32_t acc = 0;
                    for (fy = fy_start; fy < fy_end; ++fy) {
                        const int8_t *in_row =
                            input + ((b * p->input.h + in_y0 + fy) * p->input.w + in_x0) *
                                        p->input.c + ch;
                        for (fx = fx_start; fx < fx_end; ++fx) {
                            acc += in_row[fx * p->input.c];
                        }
                    }
                    /* Round half away from zero; C division truncates toward zero. */
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    out_px[ch] = (int8_t)te_clamp(acc, p->act_min, p->act_max);
                }
            }
        }
    }
    return TE_OK;
}

te_status_t te_maxpool_s8(const te_maxpool_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t b, oy, ox, ch, fy, fx;
    const te_status_t st = te_pool_check(p, input, output);
    if (st != TE_OK) {
        return st;
    }
    for (b = 0; b < p->output.n; ++b) {
        for (oy = 0; oy < p->output.h; ++oy) {
            const int32_t in_y0 = oy * p->stride_h - p->pad_h;
            const int32_t fy_start = te_max_i32(0, -in_y0);
            const int32_t fy_end = te_min_i32(p->filter_h, p->input.h - in_y0);
            for (ox = 0; ox < p->output.w; ++ox) {
                const int32_t in_x0 = ox * p->stride_w - p->pad_w;
                const int32_t fx_start = te_max_i32(0, -in_x0);
                const int32_t fx_end = te_min_i32(p->filter_w, p->input.w - in_x0);
                int8_t *out_px = output + ((b * p->output.h + oy) * p->output.w + ox) * p->output.c;
                for (ch = 0; ch < p->output.c; ++ch) {
                    int32_t mx = -128; /* TFLite starts from the int8 minimum */
                    for (fy = fy_start; fy < fy_end; ++fy) {
                        const int8_t *in_row =
                            input + ((b * p->input.h + in_y0 + fy) * p->input.w + in_x0) *
                                        p->input.c + ch;
                        for (fx = fx_start; fx < fx_end; ++fx) {
                            mx = te_max_i32(mx, in_row[fx * p->input.c]);
                        }
                    }
                    out_px[ch] = (int8_t)te_clamp(mx, p->act_min, p->act_max);
                }
            }
        }
    }
    return TE_OK;
}

te_status_t te_mean_s8(const te_mean_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t b, c0, i, k, n_px, block;
    uint32_t acc[TE_MEAN_BLOCK];
    uint32_t zp_total;
    if (p == NULL || input == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    if (!te_dims_valid(&p->input) || p->output.n != p->input.n || p->output.h != 1 ||
        p->output.w != 1 || p->output.c != p->input.c || p->multiplier < 0 || p->shift < -31 ||
        p->shift > 30 || p->q.act_min < -128 || p->q.act_max > 127 ||
        p->q.act_min > p->q.act_max) {
        return TE_ERR_ARG;
    }
    n_px = p->input.h * p->input.w;
    /* TFLM sums in int32 with wrap-around and subtracts zp * count; unsigned arithmetic gives
     * the same bits without signed overflow. */
    zp_total = (uint32_t)p->q.input_offset * (uint32_t)n_px;
    for (b = 0; b < p->input.n; ++b) {
        const int8_t *in_b = input + b * n_px * p->input.c;
        for (c0 = 0; c0 < p->input.c; c0 += TE_MEAN_BLOCK) {
            block = te_min_i32(TE_MEAN_BLOCK, p->input.c - c0);
            for (k = 0; k < block; ++k) {
                acc[k] = zp_total;
            }
            for (i = 0; i < n_px; ++i) {
                const int8_t *px = in_b + i * p->input.c + c0;
                for (k = 0; k < block; ++k) {
                    acc[k] += (uint32_t)(int32_t)px[k];
                }
            }
            for (k = 0; k < block; ++k) {
                const int32_t y = te_multiply_by_quantized_multiplier((int32_t)acc[k],
                                                                      p->multiplier, p->shift) +
                                  p->q.output_offset;
                output[b * p->input.c + c0 + k] = (int8_t)te_clamp(y, p->q.act_min, p->q.act_max);
            }
        }
    }
    return TE_OK;
}
