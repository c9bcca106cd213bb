#include "te_conv_rows.h"

#include "te_rows_inplace.h"

/* TE_ROWS_FRONT_END's geometry and bands (te_rows_inplace.h), written out because a CONV_2D band
 * also tells the kernel how many bytes after its output are free: from the band's output end to
 * the first input row it reads. No later band reads input before that row, so those bytes hold
 * only dead input or output still to be written, and te_conv2d_room_s8 puts its im2col work
 * space there instead of over the band's own last pixels (which would then take the slower
 * generic loop). Bands are made small enough for that gap to hold the whole work space where
 * the offset allows: resnet's in-place 32x32x16 layer (offset 1,536 B) runs one row per band
 * with a 512-byte gap instead of two rows with none. */

/* The narrowest output row (pixels) worth a band of its own: see te_conv2d_rows_inplace_s8. */
#define TE_CONV_ROWS_MIN_WIDTH 8

typedef struct {
    const te_conv2d_params_t *p;
    const int8_t *input;
    const int8_t *filter;
    const int32_t *bias;
    int in_place; /* the input starts at or after the output, in the same buffer */
} te_conv_rows_ctx_t;

static int te_conv_rows_geometry(const te_conv2d_params_t *p, te_rows_t *g)
{
    /* every window must reach the image: a band of padding alone has no input rows */
    if (p == NULL || p->input.n < 1 || p->input.h < 1 || p->input.w < 1 || p->input.c < 1 ||
        p->output.n != p->input.n || p->output.h < 1 || p->output.w < 1 || p->output.c < 1 ||
        p->filter.h < 1 || p->stride_h < 1 || p->dilation_h < 1 || p->pad_h < 0 ||
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

/** Output rows [r0, r1) of batch b into out: the input rows their windows cover, as a smaller
 * layer, with the gap up to those rows as room. */
static te_status_t te_conv_rows_band(const te_conv_rows_ctx_t *c, int32_t b, int32_t r0,
                                     int32_t r1, int8_t *out)
{
    const te_conv2d_params_t *p = c->p;
    te_conv2d_params_t s = *p;
    const int32_t y0 = r0 * p->stride_h - p->pad_h;
    const int32_t lo = y0 > 0 ? y0 : 0;
    const int32_t end = (r1 - 1) * p->stride_h - p->pad_h + (p->filter.h - 1) * p->dilation_h + 1;
    const int32_t hi = end < p->input.h ? end : p->input.h;
    const int8_t *in = c->input + (b * p->input.h + lo) * p->input.w * p->input.c;
    const int8_t *out_end = out + (r1 - r0) * p->output.w * p->output.c;
    int32_t room = 0;
    if (hi <= lo) {
        return TE_ERR_ARG;
    }
    if (c->in_place && in > out_end) {
        room = (int32_t)(in - out_end);
    }
    s.input.n = 1;
    s.output.n = 1;
    s.input.h = hi - lo;
    s.output.h = r1 - r0;
    s.pad_h = lo - y0;
    /* The run-time dispatchers, not a path's own entry point (te_conv2d_path_t): whether a
     * band's pixel pairs take im2col depends on its room and its pixel count, which differ from
     * band to band (the last band, a gap too short for the work space). A model whose layers
     * run band by band therefore links every path of the generic kernel. */
    if (te_conv2d_variant(&s, 0) == TE_CONV2D_GENERIC) {
        return te_conv2d_room_s8(&s, in, c->filter, c->bias, out, room);
    }
    return te_conv2d_wrapper_s8(&s, in, c->filter, c->bias, out, NULL);
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
    uintptr_t in0, out0;
    int32_t b, r0, band;
    if (!te_conv_rows_geometry(p, &g) || filter == NULL || input == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    c.p = p;
    c.input = input;
    c.filter = filter;
    c.bias = bias;
    in0 = (uintptr_t)input;
    out0 = (uintptr_t)output;
    if (out0 + (uintptr_t)g.n * (uintptr_t)g.out_h * (uintptr_t)g.out_row <= in0 ||
        in0 + (uintptr_t)g.n * (uintptr_t)g.in_h * (uintptr_t)g.in_row <= out0) {
        c.in_place = 0; /* apart: one band per batch */
        band = g.out_h;
    } else if (in0 < out0 || in0 - out0 > (uintptr_t)INT32_MAX) {
        return TE_ERR_ARG;
    } else {
        const int32_t offset = (int32_t)(in0 - out0);
        const int32_t work = te_conv2d_room_bytes(p);
        c.in_place = 1;
        band = te_rows_inplace_band(&g, offset);
        if (band == 0) {
            return TE_ERR_ARG;
        }
        if (work > 0 && te_rows_inplace_band(&g, offset - work) >= 1) {
            band = te_rows_inplace_band(&g, offset - work); /* every band's gap holds it */
        } else if (work > 0 && p->output.w >= TE_CONV_ROWS_MIN_WIDTH &&
                   te_rows_inplace_band(&g, offset - work + g.out_row) >= 1) {
            /* One row per band leaves fewer pixels to the generic loop than any wider band:
             * a band of r rows has a gap about (r - 1) rows smaller, so its own pixels hold
             * the work space's remainder less the same r - 1 rows. Not on narrow rows, where
             * every band's set-up and its odd pixel outside the pixel pairs cost more than the
             * generic loop saves: kws's 25x5x64 first layer ran 2.2x the instructions one row
             * a band (1.42M against 0.65M), resnet's 32-wide rows 0.8x. */
            band = 1;
        }
    }
    for (b = 0; b < g.n; ++b) {
        for (r0 = 0; r0 < g.out_h; r0 += band) {
            const int32_t r1 = r0 + band < g.out_h ? r0 + band : g.out_h;
            const te_status_t st =
                te_conv_rows_band(&c, b, r0, r1, output + (b * g.out_h + r0) * g.out_row);
            if (st != TE_OK) {
                return st;
            }
        }
    }
    return TE_OK;
}
