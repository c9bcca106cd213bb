#include "te_conv_rows.h"

#include "te_rows_inplace.h"

typedef struct {
    const te_conv2d_params_t *p;
    const int8_t *input;
    const int8_t *filter;
    const int32_t *bias;
} te_conv_rows_ctx_t;

static int te_conv_rows_geometry(const te_conv2d_params_t *p, te_rows_t *g)
{
    if (p == NULL || p->input.n < 1 || p->input.h < 1 || p->input.w < 1 || p->input.c < 1 ||
        p->output.n != p->input.n || p->output.h < 1 || p->output.w < 1 || p->output.c < 1 ||
        p->filter.h < 1 || p->stride_h < 1 || p->dilation_h < 1 || p->pad_h < 0 ||
        /* every window must reach the image: a band of padding alone has no input rows */
        (p->output.h - 1) * p->stride_h - p->pad_h >= p->input.h ||
        (p->filter.h - 1) * p->dilation_h < p->pad_h) {
        return 0;
    }
    g->n = p->input.n;
    g->in_h = p->input.h;
    g->in_row = p->input.w * p->input.c;
    g->out_h = p->output.h;
    g->out_row = p->output.w * p->output.c;
    g->stride = p->stride_h;
    g->pad = p->pad_h;
    return 1;
}

/** Output rows [r0, r1) of batch b: the input rows their windows cover, as a smaller layer. */
static te_status_t te_conv_rows_band(const void *ctx, int32_t b, int32_t r0, int32_t r1,
                                     int8_t *out)
{
    const te_conv_rows_ctx_t *c = (const te_conv_rows_ctx_t *)ctx;
    const te_conv2d_params_t *p = c->p;
    te_conv2d_params_t s = *p;
    const int32_t y0 = r0 * p->stride_h - p->pad_h;
    const int32_t lo = y0 > 0 ? y0 : 0;
    const int32_t end = (r1 - 1) * p->stride_h - p->pad_h + (p->filter.h - 1) * p->dilation_h + 1;
    const int32_t hi = end < p->input.h ? end : p->input.h;
    if (hi <= lo) {
        return TE_ERR_ARG;
    }
    s.input.n = 1;
    s.output.n = 1;
    s.input.h = hi - lo;
    s.output.h = r1 - r0;
    s.pad_h = lo - y0;
    return te_conv2d_wrapper_s8(&s, c->input + (b * p->input.h + lo) * p->input.w * p->input.c,
                                c->filter, c->bias, out, NULL);
}

int32_t te_conv2d_rows_inplace_band(const te_conv2d_params_t *p, int32_t input_offset)
{
    te_rows_t g;
    return te_conv_rows_geometry(p, &g) ? te_rows_inplace_band(&g, input_offset) : 0;
}

te_status_t te_conv2d_rows_inplace_s8(const te_conv2d_params_t *p, const int8_t *input,
                                      const int8_t *filter, const int32_t *bias, int8_t *output)
{
    te_rows_t g;
    te_conv_rows_ctx_t c;
    if (!te_conv_rows_geometry(p, &g) || filter == NULL) {
        return TE_ERR_ARG;
    }
    c.p = p;
    c.input = input;
    c.filter = filter;
    c.bias = bias;
    return te_rows_inplace_run(&g, input, output, te_conv_rows_band, &c);
}
