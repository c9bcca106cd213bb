#include "te_gather.h"
#include "te_transpose.h"

/* The parameters are a gather that stays inside the input. */
static int te_transpose_valid(const te_transpose_params_t *p)
{
    int64_t last = 0;
    int k;
    if (p->input_size < 1) {
        return 0;
    }
    for (k = 0; k < TE_TRANSPOSE_MAX_DIMS; ++k) {
        if (p->count[k] < 1 || p->step[k] < 0) {
            return 0;
        }
        last += (int64_t)(p->count[k] - 1) * p->step[k];
    }
    return last < p->input_size;
}

/* Either element type: the gather counts elements of `elem_bytes` bytes. */
static te_status_t te_transpose_any(const te_transpose_params_t *p, const void *input,
                                    void *output, size_t elem_bytes)
{
    if (p == NULL || input == NULL || output == NULL || input == output ||
        !te_transpose_valid(p)) {
        return TE_ERR_ARG;
    }
    te_gather5(input, 0, p->count, p->step, output, elem_bytes);
    return TE_OK;
}

te_status_t te_transpose_s8(const te_transpose_params_t *p, const int8_t *input,
                            int8_t *output)
{
    return te_transpose_any(p, input, output, sizeof(int8_t));
}

te_status_t te_transpose_s16(const te_transpose_params_t *p, const int16_t *input,
                             int16_t *output)
{
    return te_transpose_any(p, input, output, sizeof(int16_t));
}
