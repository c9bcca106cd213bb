#include <string.h>

#include "te_squeeze.h"

te_status_t te_squeeze_s8(const te_squeeze_params_t *p, const int8_t *input, int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL || p->size < 1) {
        return TE_ERR_ARG;
    }
    if (input != output) {
        memmove(output, input, (size_t)p->size);
    }
    return TE_OK;
}
