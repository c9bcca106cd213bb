#include "te_gather.h"
#include "te_strided_slice.h"

/* Every element the gather reads lies in [0, input_size). */
static int te_strided_slice_valid(const te_strided_slice_params_t *p)
{
    int64_t lo = p->offset, hi = p->offset;
    int k;
    if (p->input_size < 1) {
        return 0;
    }
    for (k = 0; k < TE_STRIDED_SLICE_MAX_DIMS; ++k) {
        const int64_t span = (int64_t)(p->count[k] - 1) * p->step[k];
        if (p->count[k] < 1) {
            return 0;
        }
        if (span < 0) {
            lo += span;
        } else {
            hi += span;
        }
    }
    return lo >= 0 && hi < p->input_size;
}

/* Either element type: the gather counts elements of `elem_bytes` bytes. */
static te_status_t te_strided_slice_any(const te_strided_slice_params_t *p, const void *input,
                                        void *output, size_t elem_bytes)
{
    if (p == NULL || input == NULL || output == NULL || input == output ||
        !te_strided_slice_valid(p)) {
        return TE_ERR_ARG;
    }
    te_gather5(input, p->offset, p->count, p->step, output, elem_bytes);
    return TE_OK;
}

te_status_t te_strided_slice_s8(const te_strided_slice_params_t *p, const int8_t *input,
                                int8_t *output)
{
    return te_strided_slice_any(p, input, output, sizeof(int8_t));
}

te_status_t te_strided_slice_s16(const te_strided_slice_params_t *p, const int16_t *input,
                                 int16_t *output)
{
    return te_strided_slice_any(p, input, output, sizeof(int16_t));
}
