#include "user_square.h"

te_status_t user_square_s8(const user_square_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t i;
    if (p == NULL || p->table == NULL || input == NULL || output == NULL || p->size < 1) {
        return TE_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        output[i] = p->table[(int32_t)input[i] + 128];
    }
    return TE_OK;
}
