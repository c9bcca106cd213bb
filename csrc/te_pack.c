#include <stdarg.h>
#include <string.h>

#include "te_pack.h"

static int geometry_ok(const te_pack_params_t *p)
{
    return p != NULL && p->count >= 1 && p->outer >= 1 && p->copy_size >= 1;
}

/* Byte offset of tensor i's block in row k of the packed tensor, and the block's size. */
static size_t block_bytes(const te_pack_params_t *p, size_t elem_bytes)
{
    return (size_t)p->copy_size * elem_bytes;
}

static size_t packed_offset(const te_pack_params_t *p, int32_t i, int32_t k, size_t elem_bytes)
{
    return ((size_t)k * (size_t)p->count + (size_t)i) * block_bytes(p, elem_bytes);
}

/* Tensor i's rows into their blocks of the packed tensor (independent of the element type). */
static void pack_one(const te_pack_params_t *p, int32_t i, const void *single, void *packed,
                     size_t elem_bytes)
{
    const size_t block = block_bytes(p, elem_bytes);
    int32_t k;
    for (k = 0; k < p->outer; ++k) {
        memmove((uint8_t *)packed + packed_offset(p, i, k, elem_bytes),
                (const uint8_t *)single + (size_t)k * block, block);
    }
}

/* The blocks of tensor i out of the packed tensor. */
static void unpack_one(const te_pack_params_t *p, int32_t i, const void *packed, void *single,
                       size_t elem_bytes)
{
    const size_t block = block_bytes(p, elem_bytes);
    int32_t k;
    for (k = 0; k < p->outer; ++k) {
        memmove((uint8_t *)single + (size_t)k * block,
                (const uint8_t *)packed + packed_offset(p, i, k, elem_bytes), block);
    }
}

te_status_t te_pack_s8(const te_pack_params_t *p, const int8_t *input0, ...)
{
    va_list ap;
    const int8_t *in;
    int8_t *out;
    int32_t i;

    if (!geometry_ok(p) || input0 == NULL) {
        return TE_ERR_ARG;
    }
    /* First pass: every pointer is set; the output follows the inputs. */
    va_start(ap, input0);
    for (i = 1; i < p->count; ++i) {
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
    for (i = 0; i < p->count; ++i) {
        if (i > 0) {
            in = va_arg(ap, const int8_t *);
        }
        pack_one(p, i, in, out, sizeof(int8_t));
    }
    va_end(ap);
    return TE_OK;
}

te_status_t te_unpack_s8(const te_pack_params_t *p, const int8_t *input, ...)
{
    va_list ap;
    int32_t i;

    if (!geometry_ok(p) || input == NULL) {
        return TE_ERR_ARG;
    }
    va_start(ap, input);
    for (i = 0; i < p->count; ++i) {
        if (va_arg(ap, int8_t *) == NULL) {
            va_end(ap);
            return TE_ERR_ARG;
        }
    }
    va_end(ap);
    va_start(ap, input);
    for (i = 0; i < p->count; ++i) {
        unpack_one(p, i, input, va_arg(ap, int8_t *), sizeof(int8_t));
    }
    va_end(ap);
    return TE_OK;
}
