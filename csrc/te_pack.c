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

/* Variadic tensor pointers, read with exactly the type the caller passed (C99 allows no
 * other): PACK's inputs `const int8_t *` / `const int16_t *`, outputs `int8_t *` / `int16_t *`. */
static const void *next_input(va_list *ap, size_t elem_bytes)
{
    if (elem_bytes == 1) {
        return va_arg(*ap, const int8_t *);
    }
    return va_arg(*ap, const int16_t *);
}

static void *next_output(va_list *ap, size_t elem_bytes)
{
    if (elem_bytes == 1) {
        return va_arg(*ap, int8_t *);
    }
    return va_arg(*ap, int16_t *);
}

/* PACK's output after count - 1 more inputs, or NULL if any pointer is NULL. */
static void *pack_output(const te_pack_params_t *p, va_list *ap, size_t elem_bytes)
{
    int32_t i;
    for (i = 1; i < p->count; ++i) {
        if (next_input(ap, elem_bytes) == NULL) {
            return NULL;
        }
    }
    return next_output(ap, elem_bytes);
}

static void pack_all(const te_pack_params_t *p, const void *input0, void *out, va_list *ap,
                     size_t elem_bytes)
{
    const void *in = input0;
    int32_t i;
    for (i = 0; i < p->count; ++i) {
        if (i > 0) {
            in = next_input(ap, elem_bytes);
        }
        pack_one(p, i, in, out, elem_bytes);
    }
}

/* 1 when all of UNPACK's count outputs are set. */
static int unpack_outputs_set(const te_pack_params_t *p, va_list *ap, size_t elem_bytes)
{
    int32_t i;
    for (i = 0; i < p->count; ++i) {
        if (next_output(ap, elem_bytes) == NULL) {
            return 0;
        }
    }
    return 1;
}

static void unpack_all(const te_pack_params_t *p, const void *input, va_list *ap,
                       size_t elem_bytes)
{
    int32_t i;
    for (i = 0; i < p->count; ++i) {
        unpack_one(p, i, input, next_output(ap, elem_bytes), elem_bytes);
    }
}

te_status_t te_pack_s8(const te_pack_params_t *p, const int8_t *input0, ...)
{
    va_list ap;
    void *out;
    if (!geometry_ok(p) || input0 == NULL) {
        return TE_ERR_ARG;
    }
    /* First pass: every pointer is set; the output follows the inputs. */
    va_start(ap, input0);
    out = pack_output(p, &ap, sizeof(int8_t));
    va_end(ap);
    if (out == NULL) {
        return TE_ERR_ARG;
    }
    va_start(ap, input0);
    pack_all(p, input0, out, &ap, sizeof(int8_t));
    va_end(ap);
    return TE_OK;
}

te_status_t te_pack_s16(const te_pack_params_t *p, const int16_t *input0, ...)
{
    va_list ap;
    void *out;
    if (!geometry_ok(p) || input0 == NULL) {
        return TE_ERR_ARG;
    }
    va_start(ap, input0);
    out = pack_output(p, &ap, sizeof(int16_t));
    va_end(ap);
    if (out == NULL) {
        return TE_ERR_ARG;
    }
    va_start(ap, input0);
    pack_all(p, input0, out, &ap, sizeof(int16_t));
    va_end(ap);
    return TE_OK;
}

te_status_t te_unpack_s8(const te_pack_params_t *p, const int8_t *input, ...)
{
    va_list ap;
    int ok;
    if (!geometry_ok(p) || input == NULL) {
        return TE_ERR_ARG;
    }
    va_start(ap, input);
    ok = unpack_outputs_set(p, &ap, sizeof(int8_t));
    va_end(ap);
    if (!ok) {
        return TE_ERR_ARG;
    }
    va_start(ap, input);
    unpack_all(p, input, &ap, sizeof(int8_t));
    va_end(ap);
    return TE_OK;
}

te_status_t te_unpack_s16(const te_pack_params_t *p, const int16_t *input, ...)
{
    va_list ap;
    int ok;
    if (!geometry_ok(p) || input == NULL) {
        return TE_ERR_ARG;
    }
    va_start(ap, input);
    ok = unpack_outputs_set(p, &ap, sizeof(int16_t));
    va_end(ap);
    if (!ok) {
        return TE_ERR_ARG;
    }
    va_start(ap, input);
    unpack_all(p, input, &ap, sizeof(int16_t));
    va_end(ap);
    return TE_OK;
}
