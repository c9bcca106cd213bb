#include "te_fc.h"
#include "te_requant16.h"
/* te_simd.h sets TE_SIMD: 1 on a core with the DSP extension in an optimised build, else 0 and
 * the portable loops are the whole kernel. The code generator ships it with this file. */
#include "te_simd.h"

#if TE_SIMD
/** One channel's fast requantisation, and whether its multiplier and shift are in its domain. */
typedef struct {
    te_simd_rq_t q;
    int32_t fast;
} te_fc_rq_t;

static inline te_fc_rq_t te_fc_rq(const te_fully_connected_params_t *p, int32_t c)
{
    const int32_t m = p->rq.multiplier[c], sh = p->rq.shift[c];
    te_fc_rq_t r;
    r.fast = m >= 0 && sh <= -1 && sh >= -22;
    r.q = te_simd_rq_make(m, r.fast ? sh : -1, 2 * p->q.output_offset + 1);
    return r;
}

/* The exact rule, out of line: it is rare, and inlined it would crowd the registers of the
 * loops that call te_fc_out. */
static TE_SIMD_NOINLINE int8_t te_fc_out_exact(const te_fully_connected_params_t *p,
                                               int32_t acc, int32_t c)
{
    acc = te_requantize(&p->rq, c, acc) + p->q.output_offset;
    return (int8_t)te_clamp(acc, p->q.act_min, p->q.act_max);
}

/**
 * Output channel c of accumulator acc: te_simd_out1 where its domain holds for THIS value
 * (multiplier >= 0, shift in [-22, -1], |acc| < 2^30), else the exact scalar rule. The check is
 * per output, so a layer with a few degenerate channels (multiplier 0, a shift of -31, a bias
 * near 2^31 as in keyword_scrambled) keeps SIMD sums for all and the fast rule for the rest.
 * The sums themselves need no domain: SMLAD wraps modulo 2^32 as the int32 loop does.
 * r0 is channel 0's te_fc_rq, computed once per call for per-tensor quantisation.
 */
static inline int8_t te_fc_out(const te_fully_connected_params_t *p, te_fc_rq_t r0, int32_t acc,
                               int32_t c)
{
    const te_fc_rq_t r = p->rq.per_channel ? te_fc_rq(p, c) : r0;
    if (r.fast && (uint32_t)acc + ((1u << 30) - 1u) < (1u << 31) - 1u) {
        return te_simd_out1(acc, r.q, p->q.act_min, p->q.act_max);
    }
    return te_fc_out_exact(p, acc, c);
}

/**
 * One input row times four weight rows w, w + n, w + 2n, w + 3n (no weight offset): the row's
 * four bytes are widened once with the input offset (SXTAB16) and shared by the four rows, 23
 * instructions per 16 MACs where two rows take 13 per 8.
 */
static inline void te_fc_dot_1x4(const int8_t *x, const int8_t *w, int32_t n, int32_t x_off2,
                                 int32_t s[4])
{
    int32_t s0 = s[0], s1 = s[1], s2 = s[2], s3 = s[3];
    const int32_t x_off = te_simd_lane0(x_off2);
    const int8_t *w1 = w + n, *w2 = w1 + n, *w3 = w2 + n;
    const int8_t *const end = x + (n & ~3);
    int32_t i;
    while (x != end) {
        uint32_t t = TE_SIMD_NEXT4(x);
        const int32_t x_e = te_sxtab16(x_off2, t), x_o = te_sxtab16_r8(x_off2, t);
        t = TE_SIMD_NEXT4(w);
        s0 = te_smlad(x_e, te_sxtb16(t), te_smlad(x_o, te_sxtb16_r8(t), s0));
        t = TE_SIMD_NEXT4(w1);
        s1 = te_smlad(x_e, te_sxtb16(t), te_smlad(x_o, te_sxtb16_r8(t), s1));
        t = TE_SIMD_NEXT4(w2);
        s2 = te_smlad(x_e, te_sxtb16(t), te_smlad(x_o, te_sxtb16_r8(t), s2));
        t = TE_SIMD_NEXT4(w3);
        s3 = te_smlad(x_e, te_sxtb16(t), te_smlad(x_o, te_sxtb16_r8(t), s3));
    }
    for (i = n & 3; i > 0; --i) {
        const int32_t v = *x++ + x_off;
        s0 += v * *w++;
        s1 += v * *w1++;
        s2 += v * *w2++;
        s3 += v * *w3++;
    }
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
}

/**
 * SIMD path (te_simd.h), bit-exact with the loop below for every parameter set the kernel
 * accepts: output features in fours (no weight offset) or pairs, each block one pass over the
 * input row with SMLAD for two MACs per instruction, then te_fc_out per output.
 */
static void te_fully_connected_simd(const te_fully_connected_params_t *p, const int8_t *input,
                                    const int8_t *weights, const int32_t *bias, int8_t *output)
{
    const int32_t n = p->in_features, n_out = p->out_features;
    const int32_t x_off2 = te_simd_dup16(p->q.input_offset);
    const int32_t w_off2 = te_simd_dup16(p->filter_offset);
    const te_fc_rq_t r0 = te_fc_rq(p, 0);
    int32_t b, o, j;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *x = input + b * n;
        int8_t *out = output + b * n_out;
        o = 0;
        if (p->filter_offset == 0) {
            for (; o + 4 <= n_out; o += 4) {
                int32_t s[4];
                for (j = 0; j < 4; ++j) {
                    s[j] = bias != NULL ? bias[o + j] : 0;
                }
                te_fc_dot_1x4(x, weights + o * n, n, x_off2, s);
                for (j = 0; j < 4; ++j) {
                    out[o + j] = te_fc_out(p, r0, s[j], o + j);
                }
            }
        }
        for (; o + 2 <= n_out; o += 2) {
            int32_t s[2];
            s[0] = bias != NULL ? bias[o] : 0;
            s[1] = bias != NULL ? bias[o + 1] : 0;
            te_simd_dot_1x2(x, weights + o * n, n, n, x_off2, w_off2, s);
            out[o] = te_fc_out(p, r0, s[0], o);
            out[o + 1] = te_fc_out(p, r0, s[1], o + 1);
        }
        if (o < n_out) {
            out[o] = te_fc_out(p, r0, te_simd_dot_1x1(x, weights + o * n, n, x_off2, w_off2,
                                                   bias != NULL ? bias[o] : 0), o);
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
    te_fully_connected_simd(p, input, weights, bias, output);
    return TE_OK;
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
