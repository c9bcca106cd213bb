#include <string.h>

#include "te_variables.h"

/* The state region never overlaps the arena, so the state copies are memcpy; the value and
 * its view are either one buffer or two disjoint ones. */
static void te_assign_bytes(const te_variable_params_t *p, const void *value, void *state,
                            void *output)
{
    memcpy(state, value, (size_t)p->size);
    if (output != value) {
        memcpy(output, value, (size_t)p->size);
    }
}

static int te_variable_size_ok(const te_variable_params_t *p, int32_t elem)
{
    return p->size >= elem && p->size % elem == 0;
}

te_status_t te_read_variable_s8(const te_variable_params_t *p, const int8_t *state,
                                int8_t *output)
{
    if (p == NULL || state == NULL || output == NULL || !te_variable_size_ok(p, 1)) {
        return TE_ERR_ARG;
    }
    memcpy(output, state, (size_t)p->size);
    return TE_OK;
}

te_status_t te_read_variable_s16(const te_variable_params_t *p, const int16_t *state,
                                 int16_t *output)
{
    if (p == NULL || state == NULL || output == NULL || !te_variable_size_ok(p, 2)) {
        return TE_ERR_ARG;
    }
    memcpy(output, state, (size_t)p->size);
    return TE_OK;
}

te_status_t te_assign_variable_s8(const te_variable_params_t *p, const int8_t *value,
                                  int8_t *state, int8_t *output)
{
    if (p == NULL || value == NULL || state == NULL || output == NULL ||
        !te_variable_size_ok(p, 1)) {
        return TE_ERR_ARG;
    }
    te_assign_bytes(p, value, state, output);
    return TE_OK;
}

te_status_t te_assign_variable_s16(const te_variable_params_t *p, const int16_t *value,
                                   int16_t *state, int16_t *output)
{
    if (p == NULL || value == NULL || state == NULL || output == NULL ||
        !te_variable_size_ok(p, 2)) {
        return TE_ERR_ARG;
    }
    te_assign_bytes(p, value, state, output);
    return TE_OK;
}
