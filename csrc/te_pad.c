#include <string.h>

#include "te_pad.h"

/* n elements of `value` at dst: int8 (elem_bytes 1) or int16 (2, dst 2-byte aligned). */
static void te_pad_fill(uint8_t *dst, int32_t n, size_t elem_bytes, int32_t value)
{
    int32_t i;
    if (elem_bytes == 1) {
        memset(dst, value, (size_t)n);
    } else {
        int16_t *d = (int16_t *)(void *)dst;
        for (i = 0; i < n; ++i) {
            d[i] = (int16_t)value;
        }
    }
}

/* The padding for either element type; value_min/value_max: the range of the pad value. */
static te_status_t te_pad_any(const te_pad_params_t *p, const void *input, void *output,
                              size_t elem_bytes, int32_t value_min, int32_t value_max)
{
    int32_t d, o0, o1, o2;
    int32_t in_dims[4], out_dims[4];
    const uint8_t *in = (const uint8_t *)input;
    uint8_t *out = (uint8_t *)output;
    if (p == NULL || input == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    in_dims[0] = p->input.n;
    in_dims[1] = p->input.h;
    in_dims[2] = p->input.w;
    in_dims[3] = p->input.c;
    out_dims[0] = p->output.n;
    out_dims[1] = p->output.h;
    out_dims[2] = p->output.w;
    out_dims[3] = p->output.c;
    for (d = 0; d < 4; ++d) {
        if (in_dims[d] < 1 || p->pad_before[d] < 0 || p->pad_after[d] < 0 ||
            out_dims[d] != in_dims[d] + p->pad_before[d] + p->pad_after[d]) {
            return TE_ERR_ARG;
        }
    }
    if (p->pad_value < value_min || p->pad_value > value_max) {
        return TE_ERR_ARG;
    }
    /* Walk output rows (the last dimension); a row is all padding, or padding around one
     * contiguous input row. Offsets count elements, scaled to bytes at the pointer. */
    for (o0 = 0; o0 < out_dims[0]; ++o0) {
        const int32_t i0 = o0 - p->pad_before[0];
        for (o1 = 0; o1 < out_dims[1]; ++o1) {
            const int32_t i1 = o1 - p->pad_before[1];
            for (o2 = 0; o2 < out_dims[2]; ++o2) {
                const int32_t i2 = o2 - p->pad_before[2];
                const size_t out_at = (size_t)((o0 * out_dims[1] + o1) * out_dims[2] + o2) *
                                      (size_t)out_dims[3];
                uint8_t *out_row = out + out_at * elem_bytes;
                if (i0 < 0 || i0 >= in_dims[0] || i1 < 0 || i1 >= in_dims[1] || i2 < 0 ||
                    i2 >= in_dims[2]) {
                    te_pad_fill(out_row, out_dims[3], elem_bytes, p->pad_value);
                } else {
                    const size_t in_at = (size_t)((i0 * in_dims[1] + i1) * in_dims[2] + i2) *
                                         (size_t)in_dims[3];
                    const size_t before = (size_t)p->pad_before[3] * elem_bytes;
                    const size_t row = (size_t)in_dims[3] * elem_bytes;
                    te_pad_fill(out_row, p->pad_before[3], elem_bytes, p->pad_value);
                    memcpy(out_row + before, in + in_at * elem_bytes, row);
                    te_pad_fill(out_row + before + row, p->pad_after[3], elem_bytes,
                                p->pad_value);
                }
            }
        }
    }
    return TE_OK;
}

te_status_t te_pad_s8(const te_pad_params_t *p, const int8_t *input, int8_t *output)
{
    return te_pad_any(p, input, output, sizeof(int8_t), INT8_MIN, INT8_MAX);
}

te_status_t te_pad_s16(const te_pad_params_t *p, const int16_t *input, int16_t *output)
{
    return te_pad_any(p, input, output, sizeof(int16_t), INT16_MIN, INT16_MAX);
}
