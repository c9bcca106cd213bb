#include "running_max.h"

te_status_t test_running_max_s8(const test_running_max_params_t *p, const int8_t *x,
                                int8_t *state, int8_t *y)
{
    int32_t i;
    if (p == NULL || x == NULL || state == NULL || y == NULL || p->size < 0) {
        return TE_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        if (x[i] > state[i]) {
            state[i] = x[i];
        }
        y[i] = state[i];
    }
    return TE_OK;
}
