#include <string.h>

#include "te_split.h"

/* The split for either element type: chunks count elements of `elem_bytes` bytes. */
static te_status_t te_split_any(const te_split_params_t *p, const void *input,
                                uint8_t *const outs[TE_SPLIT_MAX_OUTPUTS], size_t elem_bytes)
{
    const uint8_t *in = (const uint8_t *)input;
    int32_t i, k;
    if (p == NULL || input == NULL || p->outer < 1 || p->num_outputs < 1 ||
        p->num_outputs > TE_SPLIT_MAX_OUTPUTS) {
        return TE_ERR_ARG;
    }
    for (i = 0; i < p->num_outputs; ++i) {
        if (outs[i] == NULL || p->chunk[i] < 1) {
            return TE_ERR_ARG;
        }
    }
    for (k = 0; k < p->outer; ++k) {
        for (i = 0; i < p->num_outputs; ++i) {
            const size_t n = (size_t)p->chunk[i] * elem_bytes;
            uint8_t *dst = outs[i] + (size_t)k * n;
            /* An output the planner placed at its slice of the input (a view) is already there. */
            if (dst != in) {
                memcpy(dst, in, n);
            }
            in += n;
        }
    }
    return TE_OK;
}

te_status_t te_split_s8(const te_split_params_t *p, const int8_t *input, int8_t *out0,
                        int8_t *out1, int8_t *out2, int8_t *out3, int8_t *out4, int8_t *out5,
                        int8_t *out6, int8_t *out7)
{
    uint8_t *const outs[TE_SPLIT_MAX_OUTPUTS] = {
        (uint8_t *)out0, (uint8_t *)out1, (uint8_t *)out2, (uint8_t *)out3,
        (uint8_t *)out4, (uint8_t *)out5, (uint8_t *)out6, (uint8_t *)out7};
    return te_split_any(p, input, outs, sizeof(int8_t));
}

te_status_t te_split_s16(const te_split_params_t *p, const int16_t *input, int16_t *out0,
                         int16_t *out1, int16_t *out2, int16_t *out3, int16_t *out4,
                         int16_t *out5, int16_t *out6, int16_t *out7)
{
    uint8_t *const outs[TE_SPLIT_MAX_OUTPUTS] = {
        (uint8_t *)out0, (uint8_t *)out1, (uint8_t *)out2, (uint8_t *)out3,
        (uint8_t *)out4, (uint8_t *)out5, (uint8_t *)out6, (uint8_t *)out7};
    return te_split_any(p, input, outs, sizeof(int16_t));
}
