#include "te_rows_inplace.h"

static int te_rows_ok(const te_rows_t *g)
{
    return g != NULL && g->n >= 1 && g->in_h >= 1 && g->in_row >= 1 && g->out_h >= 1 &&
           g->out_row >= 1 && g->stride >= 1 && g->pad >= 0;
}

/** need(r): the least offset at which bands of r rows never write over input still to read. */
static int64_t te_rows_need(const te_rows_t *g, int32_t r)
{
    int64_t need = 0;
    int32_t b, r0;
    for (b = 0; b < g->n; ++b) {
        for (r0 = 0; r0 < g->out_h; r0 += r) {
            const int32_t r1 = r0 + r < g->out_h ? r0 + r : g->out_h;
            const int32_t y = r0 * g->stride - g->pad;
            const int64_t end = ((int64_t)b * g->out_h + r1) * g->out_row;
            const int64_t first = ((int64_t)b * g->in_h + (y > 0 ? y : 0)) * g->in_row;
            need = end - first > need ? end - first : need;
        }
    }
    return need;
}

int32_t te_rows_inplace_band(const te_rows_t *g, int32_t offset)
{
    int32_t r;
    if (!te_rows_ok(g) || offset < 0) {
        return 0;
    }
    for (r = g->out_h; r >= 1; --r) {
        if (te_rows_need(g, r) <= offset) {
            return r;
        }
    }
    return 0;
}

te_status_t te_rows_inplace_run(const te_rows_t *g, const int8_t *input, int8_t *output,
                                te_band_fn_t fn, const void *ctx)
{
    int32_t b, r0, band;
    uintptr_t in0, out0;
    if (!te_rows_ok(g) || input == NULL || output == NULL || fn == NULL) {
        return TE_ERR_ARG;
    }
    in0 = (uintptr_t)input;
    out0 = (uintptr_t)output;
    if (out0 + (uintptr_t)g->n * (uintptr_t)g->out_h * (uintptr_t)g->out_row <= in0 ||
        in0 + (uintptr_t)g->n * (uintptr_t)g->in_h * (uintptr_t)g->in_row <= out0) {
        band = g->out_h; /* apart: nothing to wait for */
    } else if (in0 < out0 || in0 - out0 > (uintptr_t)INT32_MAX) {
        return TE_ERR_ARG;
    } else {
        band = te_rows_inplace_band(g, (int32_t)(in0 - out0));
        if (band == 0) {
            return TE_ERR_ARG;
        }
    }
    for (b = 0; b < g->n; ++b) {
        for (r0 = 0; r0 < g->out_h; r0 += band) {
            const int32_t r1 = r0 + band < g->out_h ? r0 + band : g->out_h;
            const te_status_t st = fn(ctx, b, r0, r1, output + (b * g->out_h + r0) * g->out_row);
            if (st != TE_OK) {
                return st;
            }
        }
    }
    return TE_OK;
}
