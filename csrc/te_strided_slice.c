#include <string.h>

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

te_status_t te_strided_slice_s8(const te_strided_slice_params_t *p, const int8_t *input,
                                int8_t *output)
{
    const int32_t *n, *s;
    int32_t a, b, c, d, e;
    if (p == NULL || input == NULL || output == NULL || input == output ||
        !te_strided_slice_valid(p)) {
        return TE_ERR_ARG;
    }
    n = p->count;
    s = p->step;
    for (a = 0; a < n[0]; ++a) {
        for (b = 0; b < n[1]; ++b) {
            for (c = 0; c < n[2]; ++c) {
                for (d = 0; d < n[3]; ++d) {
                    const int8_t *src = input + (p->offset + (ptrdiff_t)a * s[0] +
                                         (ptrdiff_t)b * s[1] + (ptrdiff_t)c * s[2] +
                                         (ptrdiff_t)d * s[3]);
                    if (s[4] == 1) {
                        memcpy(output, src, (size_t)n[4]);
                    } else {
                        for (e = 0; e < n[4]; ++e) {
                            output[e] = src[(ptrdiff_t)e * s[4]];
                        }
                    }
                    output += n[4];
                }
            }
        }
    }
    return TE_OK;
}
