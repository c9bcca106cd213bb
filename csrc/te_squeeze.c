#include <string.h>

#include "te_squeeze.h"

/* The bytes unchanged, whatever the element type. */
static void te_squeeze_bytes(const te_squeeze_params_t *p, const void *input, void *output)
{
    if (input != output) {
        memmove(output, input, (size_t)p->size);
    }
}

te_status_t te_squeeze_s8(const te_squeeze_params_t *p, const int8_t *input, int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL || p->size < 1) {
        return TE_ERR_ARG;
    }
    te_squeeze_bytes(p, input, output);
    return TE_OK;
}

te_status_t te_squeeze_s16(const te_squeeze_params_t *p, const int16_t *input, int16_t *output)
{
    if (p == NULL || input == NULL || output == NULL || p->size < 2 || p->size % 2 != 0) {
        return TE_ERR_ARG;
    }
    te_squeeze_bytes(p, input, output);
    return TE_OK;
}
