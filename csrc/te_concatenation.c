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

/* The next variadic tensor pointer, read with exactly the type the caller passed (C99 allows
 * no other): an input `const int8_t *` / `const int16_t *`, an output `int8_t *` / `int16_t *`. */
static const void *te_concat_next_input(va_list *ap, size_t elem_bytes)
{
    if (elem_bytes == 1) {
        return va_arg(*ap, const int8_t *);
    }
    return va_arg(*ap, const int16_t *);
}

static void *te_concat_next_output(va_list *ap, size_t elem_bytes)
{
    if (elem_bytes == 1) {
        return va_arg(*ap, int8_t *);
    }
    return va_arg(*ap, int16_t *);
}

/* The output pointer after n_inputs - 1 more inputs, or NULL if any pointer is NULL. */
static void *te_concat_output(const te_concatenation_params_t *p, va_list *ap, size_t elem_bytes)
{
    int32_t i;
    for (i = 1; i < p->n_inputs; ++i) {
        if (te_concat_next_input(ap, elem_bytes) == NULL) {
            return NULL;
        }
    }
    return te_concat_next_output(ap, elem_bytes);
}

/* Every input into place; `ap` holds the inputs after input0, then the output. */
static void te_concat_place(const te_concatenation_params_t *p, const void *input0, void *out,
                            va_list *ap, size_t elem_bytes)
{
    const void *in = input0;
    size_t offset = 0;
    int32_t i;
    for (i = 0; i < p->n_inputs; ++i) {
        if (i > 0) {
            in = te_concat_next_input(ap, elem_bytes);
        }
        offset = place_rows(p, i, in, out, offset, elem_bytes);
    }
}

te_status_t te_concatenation_s8(const te_concatenation_params_t *p, const int8_t *input0, ...)
{
    va_list ap;
    void *out;
    if (check_geometry(p) != TE_OK || input0 == NULL) {
        return TE_ERR_ARG;
    }
    /* First pass: every pointer is set, and the output follows the inputs. Nothing is written
     * unless the whole call is valid. */
    va_start(ap, input0);
    out = te_concat_output(p, &ap, sizeof(int8_t));
    va_end(ap);
    if (out == NULL) {
        return TE_ERR_ARG;
    }
    va_start(ap, input0);
    te_concat_place(p, input0, out, &ap, sizeof(int8_t));
    va_end(ap);
    return TE_OK;
}

te_status_t te_concatenation_s16(const te_concatenation_params_t *p, const int16_t *input0, ...)
{
    va_list ap;
    void *out;
    if (check_geometry(p) != TE_OK || input0 == NULL) {
        return TE_ERR_ARG;
    }
    va_start(ap, input0);
    out = te_concat_output(p, &ap, sizeof(int16_t));
    va_end(ap);
    if (out == NULL) {
        return TE_ERR_ARG;
    }
    va_start(ap, input0);
    te_concat_place(p, input0, out, &ap, sizeof(int16_t));
    va_end(ap);
    return TE_OK;
}
