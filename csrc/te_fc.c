#include "te_fc.h"

te_status_t te_fully_connected_s8(const te_fully_connected_params_t *p, const int8_t *input,
                                  const int8_t *weights, const int32_t *bias, int8_t *output)
{
    int32_t b, o, i;
    if (p == NULL || input == NULL || weights == NULL || output == NULL ||
        p->rq.multiplier == NULL || p->rq.shift == NULL) {
        return TE_ERR_ARG;
    }
    if (p->batches < 1 || p->in_features < 1 || p->out_features < 1 ||
        p->filter_offset < -127 || p->filter_offset > 128 ||
        (p->rq.per_channel && p->filter_offset != 0)) {
        return TE_ERR_ARG;
    }
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_row = input + b * p->in_features;
        for (o = 0; o < p->out_features; ++o) {
            const int8_t *w_row = weights + o * p->in_features;
            int32_t acc = 0;
            for (i = 0; i < p->in_features; ++i) {
                acc += ((int32_t)w_row[i] + p->filter_offset) *
                       ((int32_t)in_row[i] + p->q.input_offset);
            }
            if (bias != NULL) {
                acc += bias[o];
            }
            acc = te_requantize(&p->rq, o, acc) + p->q.output_offset;
            output[b * p->out_features + o] = (int8_t)te_clamp(acc, p->q.act_min, p->q.act_max);
        }
    }
    return TE_OK;
}
