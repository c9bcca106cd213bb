#include "te_transpose_conv.h"

static int te_dims_ok(const te_dims_t *d)
{
    return d->n >= 1 && d->h >= 1 && d->w >= 1 && d->c >= 1;
}

static int te_transpose_conv_params_ok(const te_transpose_conv_params_t *p)
{
    return te_dims_ok(&p->input) && te_dims_ok(&p->filter) && te_dims_ok(&p->output) &&
           p->input.n == p->output.n && p->input.c == p->filter.c &&
           p->filter.n == p->output.c && p->stride_h >= 1 && p->stride_w >= 1 &&
           p->pad_h >= 0 && p->pad_w >= 0 && p->q.input_offset >= -127 &&
           p->q.input_offset <= 128 && p->q.act_min >= -128 && p->q.act_max <= 127 &&
           p->q.act_min <= p->q.act_max && p->rq.multiplier != NULL && p->rq.shift != NULL;
}

/* Floor division for a positive divisor (C's `/` truncates toward zero). */
static int32_t te_floor_div(int32_t a, int32_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/*
 * One output pixel's int32 accumulators, gathered: output row oy receives tap ky from input row
 * iy exactly when iy * stride_h - pad_h + ky == oy. TFLite scatters every input pixel into an
 * int32 buffer of the whole output instead; the sums are the same (they wrap modulo 2^32, and
 * addition modulo 2^32 does not depend on the order), so no scratch is needed. Sums go through
 * uint32 so that they wrap without signed overflow.
 */
static int32_t te_transpose_conv_acc_s8(const te_transpose_conv_params_t *p, const int8_t *input,
                                        const int8_t *filter, int32_t b, int32_t oy, int32_t ox,
                                        int32_t oc)
{
    const int32_t cin = p->input.c, fh = p->filter.h, fw = p->filter.w;
    const int32_t sh = p->stride_h, sw = p->stride_w;
    /* The taps with a whole input row: ky = oy + pad_h - iy * sh for iy in [iy_lo, iy_hi]. */
    const int32_t iy_lo_raw = te_floor_div(oy + p->pad_h - (fh - 1) + sh - 1, sh);
    const int32_t iy_hi_raw = te_floor_div(oy + p->pad_h, sh);
    const int32_t ix_lo_raw = te_floor_div(ox + p->pad_w - (fw - 1) + sw - 1, sw);
    const int32_t ix_hi_raw = te_floor_div(ox + p->pad_w, sw);
    const int32_t iy_lo = iy_lo_raw > 0 ? iy_lo_raw : 0;
    const int32_t iy_hi = iy_hi_raw < p->input.h - 1 ? iy_hi_raw : p->input.h - 1;
    const int32_t ix_lo = ix_lo_raw > 0 ? ix_lo_raw : 0;
    const int32_t ix_hi = ix_hi_raw < p->input.w - 1 ? ix_hi_raw : p->input.w - 1;
    uint32_t sum = 0;
    int32_t iy, ix, ic;
    for (iy = iy_lo; iy <= iy_hi; ++iy) {
        const int32_t ky = oy + p->pad_h - iy * sh;
        for (ix = ix_lo; ix <= ix_hi; ++ix) {
            const int32_t kx = ox + p->pad_w - ix * sw;
            const int8_t *px = input + ((b * p->input.h + iy) * p->input.w + ix) * cin;
            const int8_t *w = filter + ((oc * fh + ky) * fw + kx) * cin;
            for (ic = 0; ic < cin; ++ic) {
                sum += (uint32_t)(((int32_t)px[ic] + p->q.input_offset) * (int32_t)w[ic]);
            }
        }
    }
    return (int32_t)sum;
}

te_status_t te_transpose_conv_s8(const te_transpose_conv_params_t *p, const int8_t *input,
                                 const int8_t *filter, const int32_t *bias, int8_t *output)
{
    int32_t b, oy, ox, oc;
    if (p == NULL || input == NULL || filter == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    if (!te_transpose_conv_params_ok(p)) {
        return TE_ERR_ARG;
    }
    for (b = 0; b < p->output.n; ++b) {
        for (oy = 0; oy < p->output.h; ++oy) {
            for (ox = 0; ox < p->output.w; ++ox) {
                int8_t *out = output + ((b * p->output.h + oy) * p->output.w + ox) * p->output.c;
                for (oc = 0; oc < p->output.c; ++oc) {
                    int32_t acc = te_transpose_conv_acc_s8(p, input, filter, b, oy, ox, oc);
                    if (bias != NULL) {
                        acc = (int32_t)((uint32_t)acc + (uint32_t)bias[oc]);
                    }
                    acc = te_requantize(&p->rq, oc, acc) + p->q.output_offset;
                    out[oc] = (int8_t)te_clamp(acc, p->q.act_min, p->q.act_max);
                }
            }
        }
    }
    return TE_OK;
}
