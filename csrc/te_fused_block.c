#include "te_fused_block.h"

#include <string.h>

static int32_t te_fb_align4(int32_t n)
{
    return (n + 3) & ~3;
}

static int32_t te_fb_span(const te_depthwise_conv_params_t *d)
{
    return (d->filter.h - 1) * d->dilation_h + 1;
}

static int te_fb_same_dims(const te_dims_t *a, const te_dims_t *b)
{
    return a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c;
}

int32_t te_fused_block_get_buffer_size(const te_fused_block_params_t *p)
{
    if (p == NULL) {
        return 0;
    }
    return te_fb_align4(te_fb_span(&p->dw) * p->expand.output.w * p->expand.output.c) +
           te_fb_align4(p->dw.output.w * p->dw.output.c) +
           (p->residual ? te_fb_align4(p->project.output.w * p->project.output.c) : 0);
}

/** The geometry te_fused_block_s8 assumes; the member kernels check the rest. */
static int te_fb_geometry_ok(const te_fused_block_params_t *p)
{
    const te_conv2d_params_t *e = &p->expand;
    const te_depthwise_conv_params_t *d = &p->dw;
    const te_conv2d_params_t *q = &p->project;
    if (e->input.n < 1 || e->input.h < 1 || e->input.w < 1 || e->input.c < 1 ||
        !te_fb_same_dims(&e->output, &d->input) || !te_fb_same_dims(&d->output, &q->input) ||
        e->input.n != e->output.n || e->input.h != e->output.h || e->input.w != e->output.w ||
        q->output.n != q->input.n || q->output.h != q->input.h || q->output.w != q->input.w ||
        d->filter.h < 1 || d->dilation_h < 1 || d->stride_h < 1 || d->output.h < 1 ||
        d->pad_h < 0 || d->pad_h > te_fb_span(d) - 1 ||
        (d->output.h - 1) * d->stride_h - d->pad_h >= d->input.h ||
        d->q.input_offset != -e->q.output_offset) {
        return 0;
    }
    if (p->residual == 0) {
        return 1;
    }
    /* The add's shapes may come flattened (equal shapes broadcast nothing): compare counts. */
    return (p->residual == 1 || p->residual == 2) && te_fb_same_dims(&q->output, &e->input) &&
           te_fb_same_dims(&p->add.input1.dims, &p->add.output) &&
           te_fb_same_dims(&p->add.input2.dims, &p->add.output) &&
           (int64_t)p->add.output.n * p->add.output.h * p->add.output.w * p->add.output.c ==
               (int64_t)q->output.n * q->output.h * q->output.w * q->output.c;
}

/** Window row j <- image row r of batch input x: expanded, or the zero point outside. */
static te_status_t te_fb_fill(const te_conv2d_params_t *ep, const int8_t *x, int32_t r,
                              int32_t h, const int8_t *filter, const int32_t *bias,
                              int8_t *row, int32_t row_bytes)
{
    if (r < 0 || r >= h) {
        memset(row, ep->q.output_offset, (size_t)row_bytes);
        return TE_OK;
    }
    return te_conv2d_1x1_s8(ep, x + (int64_t)r * ep->input.w * ep->input.c, filter, bias, row);
}

te_status_t te_fused_block_s8(const te_fused_block_params_t *p, const int8_t *input,
                              const int8_t *e_filter, const int32_t *e_bias,
                              const int8_t *d_filter, const int32_t *d_bias,
                              const int8_t *p_filter, const int32_t *p_bias, int8_t *output,
                              int8_t *scratch)
{
    te_conv2d_params_t ep, pp;
    te_depthwise_conv_params_t dp;
    te_add_params_t ap;
    int32_t span, h, ho, in_row, out_row, e_row, b, t, j;
    int64_t in_bytes, out_bytes;
    int8_t *ring, *dw_row, *p_row;
    te_status_t s;

    if (p == NULL || input == NULL || output == NULL || e_filter == NULL || d_filter == NULL ||
        p_filter == NULL || !te_fb_geometry_ok(p)) {
        return TE_ERR_ARG;
    }
    if (scratch == NULL) {
        return TE_ERR_SCRATCH;
    }
    span = te_fb_span(&p->dw);
    h = p->expand.input.h;
    ho = p->dw.output.h;
    in_row = p->expand.input.w * p->expand.input.c;
    out_row = p->project.output.w * p->project.output.c;
    e_row = p->expand.output.w * p->expand.output.c;
    in_bytes = (int64_t)p->expand.input.n * h * in_row;
    out_bytes = (int64_t)p->expand.input.n * ho * out_row;
    if ((const int8_t *)output == input) {
        if (out_row > in_row) {
            return TE_ERR_ARG;
        }
    } else if ((const int8_t *)output < input + in_bytes && input < output + out_bytes) {
        return TE_ERR_ARG;
    }

    /* The members' structs, cut to one row (the depthwise to its window, unpadded above). */
    ep = p->expand;
    ep.input.n = ep.output.n = 1;
    ep.input.h = ep.output.h = 1;
    dp = p->dw;
    dp.input.n = dp.output.n = 1;
    dp.input.h = span;
    dp.output.h = 1;
    dp.pad_h = 0;
    pp = p->project;
    pp.input.n = pp.output.n = 1;
    pp.input.h = pp.output.h = 1;
    ap = p->add;
    ap.output.n = ap.output.h = ap.output.w = 1;
    ap.output.c = out_row;
    ap.input1.dims = ap.input2.dims = ap.output;

    ring = scratch;
    dw_row = ring + te_fb_align4(span * e_row);
    p_row = dw_row + te_fb_align4(p->dw.output.w * p->dw.output.c);

    for (b = 0; b < p->expand.input.n; ++b) {
        const int8_t *x = input + (int64_t)b * h * in_row;
        int8_t *y = output + (int64_t)b * ho * out_row;
        for (t = 0; t < ho; ++t) {
            const int32_t y0 = t * p->dw.stride_h - p->dw.pad_h;
            /* Rows of the previous window still in this one move up; the rest are new. */
            int32_t kept = t == 0 ? 0 : span - p->dw.stride_h;
            if (kept > 0) {
                memmove(ring, ring + (int64_t)p->dw.stride_h * e_row, (size_t)kept * e_row);
            } else {
                kept = 0;
            }
            for (j = kept; j < span; ++j) {
                s = te_fb_fill(&ep, x, y0 + j, h, e_filter, e_bias, ring + (int64_t)j * e_row,
                               e_row);
                if (s != TE_OK) {
                    return s;
                }
            }
            s = te_depthwise_conv_wrapper_s8(&dp, ring, d_filter, d_bias, dw_row, NULL);
            if (s != TE_OK) {
                return s;
            }
            if (p->residual == 0) {
                s = te_conv2d_1x1_s8(&pp, dw_row, p_filter, p_bias, y + (int64_t)t * out_row);
            } else {
                /* The input row is read here, before the output row (maybe the same bytes). */
                const int8_t *xr = x + (int64_t)t * in_row;
                s = te_conv2d_1x1_s8(&pp, dw_row, p_filter, p_bias, p_row);
                if (s == TE_OK) {
                    s = te_add_s8(&ap, p->residual == 1 ? xr : p_row,
                                  p->residual == 1 ? p_row : xr, y + (int64_t)t * out_row);
                }
            }
            if (s != TE_OK) {
                return s;
            }
        }
    }
    return TE_OK;
}
