#include <string.h>

#include "te_slice.h"

static int te_window_fits(const te_dims_t *whole, const te_dims_t *win, int32_t y, int32_t x)
{
    return win->n == whole->n && win->c == whole->c && y >= 0 && x >= 0 && win->h >= 1 &&
           win->w >= 1 && y + win->h <= whole->h && x + win->w <= whole->w;
}

te_status_t te_slice(const te_slice_params_t *p, const void *input, void *output)
{
    int32_t b, y;
    const uint8_t *in = (const uint8_t *)input;
    uint8_t *out = (uint8_t *)output;
    size_t row;
    if (p == NULL || input == NULL || output == NULL || p->elem_bytes < 1 ||
        !te_window_fits(&p->input, &p->output, p->begin_h, p->begin_w)) {
        return TE_ERR_ARG;
    }
    row = (size_t)p->output.w * (size_t)p->output.c * (size_t)p->elem_bytes;
    for (b = 0; b < p->output.n; ++b) {
        for (y = 0; y < p->output.h; ++y) {
            const size_t src = (((size_t)b * p->input.h + (size_t)(p->begin_h + y)) * p->input.w +
                                (size_t)p->begin_w) * p->input.c * p->elem_bytes;
            const size_t dst = ((size_t)b * p->output.h + (size_t)y) * row;
            memmove(out + dst, in + src, row);
        }
    }
    return TE_OK;
}

te_status_t te_update_slice(const te_update_slice_params_t *p, const void *canvas,
                            const void *update, void *output)
{
    int32_t b, y;
    const uint8_t *upd = (const uint8_t *)update;
    uint8_t *out = (uint8_t *)output;
    size_t row;
    if (p == NULL || update == NULL || output == NULL || p->elem_bytes < 1 ||
        !te_window_fits(&p->output, &p->update, p->begin_h, p->begin_w)) {
        return TE_ERR_ARG;
    }
    if (canvas != NULL && canvas != output) {
        memmove(output, canvas, (size_t)p->output.n * p->output.h * p->output.w * p->output.c *
                                    (size_t)p->elem_bytes);
    }
    row = (size_t)p->update.w * (size_t)p->update.c * (size_t)p->elem_bytes;
    for (b = 0; b < p->update.n; ++b) {
        for (y = 0; y < p->update.h; ++y) {
            const size_t dst = (((size_t)b * p->output.h + (size_t)(p->begin_h + y)) *
                                    p->output.w + (size_t)p->begin_w) * p->output.c *
                               p->elem_bytes;
            memmove(out + dst, upd + ((size_t)b * p->update.h + (size_t)y) * row, row);
        }
    }
    return TE_OK;
}
