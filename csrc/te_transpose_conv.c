#include "te_transpose_conv.h"
#include "te_requant16.h"

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

/* The input rows (or columns) [*lo, *hi] with a tap on output row o: tap k = o + pad - i * s
 * for i in the range, k in [0, f - 1], i in [0, n - 1]. */
static void te_transpose_conv_range(int32_t o, int32_t pad, int32_t f, int32_t s, int32_t n,
                                    int32_t *lo, int32_t *hi)
{
    const int32_t lo_raw = te_floor_div(o + pad - (f - 1) + s - 1, s);
    const int32_t hi_raw = te_floor_div(o + pad, s);
    *lo = lo_raw > 0 ? lo_raw : 0;
    *hi = hi_raw < n - 1 ? hi_raw : n - 1;
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
    int32_t iy_lo, iy_hi, ix_lo, ix_hi;
    uint32_t sum = 0;
    int32_t iy, ix, ic;
    te_transpose_conv_range(oy, p->pad_h, fh, sh, p->input.h, &iy_lo, &iy_hi);
    te_transpose_conv_range(ox, p->pad_w, fw, sw, p->input.w, &ix_lo, &ix_hi);
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

/* ---- 16x8: int16 activations, int8 weights ----------------------------------------------- */

/* One output pixel's exact int64 sum for channel oc, gathered as te_transpose_conv_acc_s8 does.
 * TFLite scatters into an int64 buffer of the whole output (8 bytes per output element); int64
 * sums of |input * filter| <= 2^22 terms never overflow, so the order does not matter. */
static int64_t te_transpose_conv_acc_s16(const te_transpose_conv_params_t *p,
                                         const int16_t *input, const int8_t *filter, int32_t b,
                                         int32_t oy, int32_t ox, int32_t oc)
{
    const int32_t cin = p->input.c, fh = p->filter.h, fw = p->filter.w;
    int32_t iy_lo, iy_hi, ix_lo, ix_hi;
    int64_t sum = 0;
    int32_t iy, ix, ic;
    te_transpose_conv_range(oy, p->pad_h, fh, p->stride_h, p->input.h, &iy_lo, &iy_hi);
    te_transpose_conv_range(ox, p->pad_w, fw, p->stride_w, p->input.w, &ix_lo, &ix_hi);
    for (iy = iy_lo; iy <= iy_hi; ++iy) {
        const int32_t ky = oy + p->pad_h - iy * p->stride_h;
        for (ix = ix_lo; ix <= ix_hi; ++ix) {
            const int32_t kx = ox + p->pad_w - ix * p->stride_w;
            const int16_t *px = input + ((b * p->input.h + iy) * p->input.w + ix) * cin;
            const int8_t *w = filter + ((oc * fh + ky) * fw + kx) * cin;
            for (ic = 0; ic < cin; ++ic) {
                sum += (int32_t)px[ic] * (int32_t)w[ic];
            }
        }
    }
    return sum;
}

te_status_t te_transpose_conv_s16(const te_transpose_conv_params_t *p, const int16_t *input,
                                  const int8_t *filter, const int64_t *bias, int16_t *output)
{
    int32_t b, oy, ox, oc;
    if (p == NULL || input == NULL || filter == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    if (!te_dims_ok(&p->input) || !te_dims_ok(&p->filter) || !te_dims_ok(&p->output) ||
        p->input.n != p->output.n || p->input.c != p->filter.c || p->filter.n != p->output.c ||
        p->stride_h < 1 || p->stride_w < 1 || p->pad_h < 0 || p->pad_w < 0 ||
        !te_quant_s16_ok(&p->q) || !te_requant_s64_ok(&p->rq, p->output.c)) {
        return TE_ERR_ARG;
    }
    for (b = 0; b < p->output.n; ++b) {
        for (oy = 0; oy < p->output.h; ++oy) {
            for (ox = 0; ox < p->output.w; ++ox) {
                int16_t *out = output + ((b * p->output.h + oy) * p->output.w + ox) * p->output.c;
                for (oc = 0; oc < p->output.c; ++oc) {
                    int64_t acc = te_transpose_conv_acc_s16(p, input, filter, b, oy, ox, oc);
                    if (bias != NULL) {
                        acc += bias[oc];
                    }
                    out[oc] = (int16_t)te_clamp(te_requantize_s64(&p->rq, oc, acc), p->q.act_min,
                                                p->q.act_max);
                }
            }
        }
    }
    return TE_OK;
}
