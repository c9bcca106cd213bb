#include <string.h>

#include "te_slice.h"

/* The box lies inside the big tensor and its innermost axis is contiguous. */
static int te_box_valid(const te_slice_params_t *p)
{
    int64_t last = p->offset;
    int k;
    if (p->elem_bytes < 1 || p->whole_size < 1 || p->offset < 0 || p->step[4] != 1) {
        return 0;
    }
    for (k = 0; k < TE_SLICE_MAX_DIMS; ++k) {
        if (p->count[k] < 1 || p->step[k] < 0) {
            return 0;
        }
        last += (int64_t)(p->count[k] - 1) * p->step[k];
    }
    return last < p->whole_size;
}

/* Copies the box's rows: from the big tensor (gather) or into it (scatter). */
static void te_box_rows(const te_slice_params_t *p, uint8_t *whole, uint8_t *box, int gather)
{
    const int32_t *n = p->count, *s = p->step;
    const size_t eb = (size_t)p->elem_bytes;
    const size_t row = (size_t)n[4] * eb;
    int32_t a, b, c, d;
    for (a = 0; a < n[0]; ++a) {
        for (b = 0; b < n[1]; ++b) {
            for (c = 0; c < n[2]; ++c) {
                for (d = 0; d < n[3]; ++d) {
                    const size_t at = ((size_t)p->offset + (size_t)a * (size_t)s[0] +
                                       (size_t)b * (size_t)s[1] + (size_t)c * (size_t)s[2] +
                                       (size_t)d * (size_t)s[3]) * eb;
                    if (gather) {
                        if (box != whole + at) { /* equal: the planner made the box a view */
                            memmove(box, whole + at, row);
                        }
                    } else {
                        memmove(whole + at, box, row);
                    }
                    box += row;
                }
            }
        }
    }
}

te_status_t te_slice(const te_slice_params_t *p, const void *input, void *output)
{
    if (p == NULL || input == NULL || output == NULL || !te_box_valid(p)) {
        return TE_ERR_ARG;
    }
    /* The gather only reads through `whole`; the cast keeps one row copier for both ways. */
    te_box_rows(p, (uint8_t *)(uintptr_t)input, (uint8_t *)output, 1);
    return TE_OK;
}

te_status_t te_update_slice(const te_update_slice_params_t *p, const void *canvas,
                            const void *update, void *output)
{
    if (p == NULL || update == NULL || output == NULL || !te_box_valid(p)) {
        return TE_ERR_ARG;
    }
    if (canvas != NULL && canvas != output) {
        memmove(output, canvas, (size_t)p->whole_size * (size_t)p->elem_bytes);
    }
    te_box_rows(p, (uint8_t *)output, (uint8_t *)(uintptr_t)update, 0);
    return TE_OK;
}
