#include <string.h>

#include "te_split.h"

te_status_t te_split_s8(const te_split_params_t *p, const int8_t *input, int8_t *out0,
                        int8_t *out1, int8_t *out2, int8_t *out3, int8_t *out4, int8_t *out5,
                        int8_t *out6, int8_t *out7)
{
    int8_t *outs[TE_SPLIT_MAX_OUTPUTS];
    int32_t i, k;
    outs[0] = out0;
    outs[1] = out1;
    outs[2] = out2;
    outs[3] = out3;
    outs[4] = out4;
    outs[5] = out5;
    outs[6] = out6;
    outs[7] = out7;
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
            const size_t n = (size_t)p->chunk[i];
            /* An output the planner placed at its slice of the input (a view) is already there. */
            if (outs[i] + (size_t)k * n != input) {
                memcpy(outs[i] + (size_t)k * n, input, n);
            }
            input += n;
        }
    }
    return TE_OK;
}
