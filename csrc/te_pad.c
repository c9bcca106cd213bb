#include <string.h>

#include "te_pad.h"

te_status_t te_pad_s8(const te_pad_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t d, o0, o1, o2;
    int32_t in_dims[4], out_dims[4];
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
    if (p->pad_value < -128 || p->pad_value > 127) {
        return TE_ERR_ARG;
    }
    /* Walk output rows (the last dimension); a row is all padding, or padding around one
     * contiguous input row. */
    for (o0 = 0; o0 < out_dims[0]; ++o0) {
        const int32_t i0 = o0 - p->pad_before[0];
        for (o1 = 0; o1 < out_dims[1]; ++o1) {
            const int32_t i1 = o1 - p->pad_before[1];
            for (o2 = 0; o2 < out_dims[2]; ++o2) {
                const int32_t i2 = o2 - p->pad_before[2];
                int8_t *out_row = output + ((o0 * out_dims[1] + o1) * out_dims[2] + o2) * out_dims[3];
                if (i0 < 0 || i0 >= in_dims[0] || i1 < 0 || i1 >= in_dims[1] || i2 < 0 ||
                    i2 >= in_dims[2]) {
                    memset(out_row, p->pad_value, (size_t)out_dims[3]);
                } else {
                    const int8_t *in_row =
                        input + ((i0 * in_dims[1] + i1) * in_dims[2] + i2) * in_dims[3];
                    memset(out_row, p->pad_value, (size_t)p->pad_before[3]);
                    memcpy(out_row + p->pad_before[3], in_row, (size_t)in_dims[3]);
                    memset(out_row + p->pad_before[3] + in_dims[3], p->pad_value,
                           (size_t)p->pad_after[3]);
                }
            }
        }
    }
    return TE_OK;
}
