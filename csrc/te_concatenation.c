#include <stdarg.h>
#include <string.h>

#include "te_concatenation.h"

/* TE_OK when the geometry is inside its documented range. */
static te_status_t check_geometry(const te_concatenation_params_t *p)
{
    int64_t row_sum = 0;
    int32_t i;
    if (p == NULL || p->copy_sizes == NULL || p->n_inputs < 1 || p->outer < 1 ||
        p->output_row < 1) {
        return TE_ERR_ARG;
    }
    for (i = 0; i < p->n_inputs; ++i) {
        if (p->copy_sizes[i] < 1) {
            return TE_ERR_ARG;
        }
        row_sum += p->copy_sizes[i];
    }
    return row_sum == p->output_row ? TE_OK : TE_ERR_ARG;
}

/*
 * Copy input i's rows into their column range of the output rows, starting `offset` bytes into
 * each row; returns the offset of the next input. Independent of the element type.
 */
static size_t place_rows(const te_concatenation_params_t *p, int32_t i, const void *input,
                         void *output, size_t offset, size_t elem_bytes)
{
    const size_t copy = (size_t)p->copy_sizes[i] * elem_bytes;
    const size_t row = (size_t)p->output_row * elem_bytes;
    const uint8_t *in = (const uint8_t *)input;
    uint8_t *out = (uint8_t *)output;
    int32_t k;
    /* A producer that wrote straight into its slice leaves nothing to copy. */
    if (p->outer == 1 && in == out + offset) {
        return offset + copy;
    }
    for (k = 0; k < p->outer; ++k) {
        memmove(out + (size_t)k * row + offset, in + (size_t)k * copy, copy);
    }
    return offset + copy;
}

te_status_t te_concatenation_s8(const te_concatenation_params_t *p, const int8_t *input0, ...)
{
    va_list ap;
    const int8_t *in;
    int8_t *out;
    size_t offset = 0;
    int32_t i;

    if (check_geometry(p) != TE_OK || input0 == NULL) {
        return TE_ERR_ARG;
    }
    /* First pass: every pointer is set, and the output follows the inputs. Nothing is written
     * unless the whole call is valid. */
    va_start(ap, input0);
    for (i = 1; i < p->n_inputs; ++i) {
        if (va_arg(ap, const int8_t *) == NULL) {
            va_end(ap);
            return TE_ERR_ARG;
        }
    }
    out = va_arg(ap, int8_t *);
    va_end(ap);
    if (out == NULL) {
        return TE_ERR_ARG;
    }
    va_start(ap, input0);
    in = input0;
    for (i = 0; i < p->n_inputs; ++i) {
        if (i > 0) {
            in = va_arg(ap, const int8_t *);
        }
        offset = place_rows(p, i, in, out, offset, sizeof(int8_t));
    }
    va_end(ap);
    return TE_OK;
}
