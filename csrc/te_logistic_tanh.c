#include "te_logistic_tanh.h"

static te_status_t te_lut_s8(const te_lut_params_t *p, const int8_t *input, const int8_t *table,
                             int8_t *output)
{
    int32_t i;
    if (p == NULL || input == NULL || table == NULL || output == NULL || p->size < 1) {
        return TE_ERR_ARG;
    }
    for (i = 0; i < p->size; ++i) {
        output[i] = table[(int32_t)input[i] + 128];
    }
    return TE_OK;
}

te_status_t te_logistic_s8(const te_lut_params_t *p, const int8_t *input, const int8_t *table,
                           int8_t *output)
{
    return te_lut_s8(p, input, table, output);
}

te_status_t te_tanh_s8(const te_lut_params_t *p, const int8_t *input, const int8_t *table,
                       int8_t *output)
{
    return te_lut_s8(p, input, table, output);
}
