#include "te_fc.h"
#include "te_requant16.h"
/* te_simd.h sets TE_SIMD: 1 on a core with the DSP extension in an optimised build, else 0 and
 * the portable loops are the whole kernel. The code generator ships it with this file. */
#include "te_simd.h"

#if TE_SIMD
/* |(weight + filter_offset) * (input + input_offset)| <= 255 * 255 per term. */
#define TE_FC_MAX_TERM (255 * 255)

/**
 * SIMD path (te_simd.h), bit-exact with the loop below: output features in pairs, each pair one
 * inner product over the input row (te_simd_dot_1x2: the row's lanes, with the input offset
 * added by SXTAB16, shared by two weight rows, whose offset SXTAB16 adds too; SMLAD for two MACs
 * per instruction).
 */
static void te_fully_connected_simd(const te_fully_connected_params_t *p, const int8_t *input,
                                    const int8_t *weights, const int32_t *bias, int8_t *output)
{
    const int32_t n = p->in_features, n_out = p->out_features;
    const int32_t x_off2 = te_simd_dup16(p->q.input_offset);
    const int32_t w_off2 = te_simd_dup16(p->filter_offset);
    const int32_t lo = p->q.act_min, hi = p->q.act_max, zp = p->q.output_offset;
    int32_t b, o;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *x = input + b * n;
        int8_t *out = output + b * n_out;
        for (o = 0; o + 2 <= n_out; o += 2) {
            int32_t s[2];
            s[0] = bias != NULL ? bias[o] : 0;
            s[1] = bias != NULL ? bias[o + 1] : 0;
            te_simd_dot_1x2(x, weights + o * n, n, n, x_off2, w_off2, s);
            out[o] = te_simd_out1(s[0], te_simd_rq_channel(&p->rq, o, zp), lo, hi);
            out[o + 1] = te_simd_out1(s[1], te_simd_rq_channel(&p->rq, o + 1, zp), lo, hi);
        }
        if (o < n_out) {
            const int32_t s = te_simd_dot_1x1(x, weights + o * n, n, x_off2, w_off2,
                                              bias != NULL ? bias[o] : 0);
            out[o] = te_simd_out1(s, te_simd_rq_channel(&p->rq, o, zp), lo, hi);
        }
    }
}
#endif

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
#if TE_SIMD
    if (te_simd_rq_ok(&p->rq, bias, p->out_features, p->in_features, TE_FC_MAX_TERM)) {
        te_fully_connected_simd(p, input, weights, bias, output);
        return TE_OK;
    }
#endif
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

/* ---- 16x8: int16 activations, int8 weights ----------------------------------------------- */

/*
 * TFLite's FullyConnected / FullyConnectedPerChannel for int16 input. Each sum is exact in int64
 * (|(weight + offset) * input| <= 2^23 a term); with acc32 it is then wrapped to int32, what
 * TFLM's int32 accumulator holds, and requantised by the int32 rule, else by the int64 rule.
 */
static te_status_t te_fully_connected_run_s16(const te_fully_connected_params_t *p,
                                              const int16_t *input, const int8_t *weights,
                                              const int64_t *bias64, const int32_t *bias32,
                                              int16_t *output, int acc32)
{
    int32_t b, o, i;
    if (p == NULL || input == NULL || weights == NULL || output == NULL ||
        p->rq.multiplier == NULL || p->rq.shift == NULL) {
        return TE_ERR_ARG;
    }
    if (p->batches < 1 || p->in_features < 1 || p->out_features < 1 ||
        p->filter_offset < -127 || p->filter_offset > 128 ||
        (p->rq.per_channel && p->filter_offset != 0) || !te_quant_s16_ok(&p->q) ||
        (!acc32 && !te_requant_s64_ok(&p->rq, p->out_features))) {
        return TE_ERR_ARG;
    }
    for (b = 0; b < p->batches; ++b) {
        const int16_t *in_row = input + b * p->in_features;
        for (o = 0; o < p->out_features; ++o) {
            const int8_t *w_row = weights + o * p->in_features;
            int64_t acc = 0;
            int32_t y;
            for (i = 0; i < p->in_features; ++i) {
                acc += ((int32_t)w_row[i] + p->filter_offset) * (int32_t)in_row[i];
            }
            if (acc32) {
                acc += bias32 != NULL ? bias32[o] : 0;
                y = te_requantize(&p->rq, o, te_acc32_s16(acc));
            } else {
                acc += bias64 != NULL ? bias64[o] : 0;
                y = te_requantize_s64(&p->rq, o, acc);
            }
            output[b * p->out_features + o] = (int16_t)te_clamp(y, p->q.act_min, p->q.act_max);
        }
    }
    return TE_OK;
}

te_status_t te_fully_connected_s16(const te_fully_connected_params_t *p, const int16_t *input,
                                   const int8_t *weights, const int64_t *bias, int16_t *output)
{
    return te_fully_connected_run_s16(p, input, weights, bias, NULL, output, 0);
}

te_status_t te_fully_connected_acc32_s16(const te_fully_connected_params_t *p,
                                         const int16_t *input, const int8_t *weights,
                                         const int32_t *bias, int16_t *output)
{
    return te_fully_connected_run_s16(p, input, weights, NULL, bias, output, 1);
}
