#include <string.h>

#include "te_reshape.h"

/* The bytes unchanged, whatever the element type. */
static void te_reshape_bytes(const te_reshape_params_t *p, const void *input, void *output)
{
    if (input != output) {
        memmove(output, input, (size_t)p->size);
    }
}

te_status_t te_reshape_s8(const te_reshape_params_t *p, const int8_t *input, int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL || p->size < 1) {
        return TE_ERR_ARG;
    }
    te_reshape_bytes(p, input, output);
    return TE_OK;
}

te_status_t te_reshape_s16(const te_reshape_params_t *p, const int16_t *input, int16_t *output)
{
    if (p == NULL || input == NULL || output == NULL || p->size < 2 || p->size % 2 != 0) {
        return TE_ERR_ARG;
    }
    te_reshape_bytes(p, input, output);
    return TE_OK;
}
