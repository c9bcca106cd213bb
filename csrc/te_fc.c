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

static inline te_fc_rq_t te_fc_rq(int32_t m, int32_t sh, int32_t zp2p1)
{
    te_fc_rq_t r;
    r.fast = m >= 0 && sh <= -1 && sh >= -22;
    r.q = te_simd_rq_make(m, r.fast ? sh : -1, zp2p1);
    return r;
}

/**
 * What every output of a call needs, copied out of the parameters once. The kernel stores int8
 * values, which may alias anything, so read through p each output would be read again after
 * every store: for the small layers (hello_world's 1 -> 16, 16 -> 1) those reloads and the
 * per-output set-up were most of the call.
 */
typedef struct {
    const int32_t *mult;
    const int8_t *shift;
    int32_t per_channel, zp2p1, lo, hi;
    te_fc_rq_t r0; /**< channel 0's, the only one of a per-tensor layer */
} te_fc_ctx_t;

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
 */
static inline int8_t te_fc_out(const te_fully_connected_params_t *p, const te_fc_ctx_t *k,
                               int32_t acc, int32_t c)
{
    const te_fc_rq_t r = k->per_channel ? te_fc_rq(k->mult[c], k->shift[c], k->zp2p1) : k->r0;
    if (r.fast && (uint32_t)acc + ((1u << 30) - 1u) < (1u << 31) - 1u) {
        return (int8_t)te_clamp(te_simd_requant(acc, r.q), k->lo, k->hi);
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

/** s = bias[o .. o + 3] (0 without a bias) plus te_fc_dot_1x4 of row x with weight rows w ..
 * w + 3n: one block of four outputs. */
static inline void te_fc_sums4(const int8_t *x, const int8_t *w, int32_t n, int32_t x_off2,
                               const int32_t *bias, int32_t o, int32_t s[4])
{
    s[0] = s[1] = s[2] = s[3] = 0;
    if (bias != NULL) {
        s[0] = bias[o];
        s[1] = bias[o + 1];
        s[2] = bias[o + 2];
        s[3] = bias[o + 3];
    }
    te_fc_dot_1x4(x, w, n, x_off2, s);
}

/**
 * TFLite's MultiplyByQuantizedMultiplier(acc, m, -e) + output_offset for EVERY int32 acc, with
 * m >= 0 and e in [1, 22], as one 64-bit sum: no |acc| < 2^30 check and no exact fallback.
 * - SaturatingRoundingDoublingHighMul(acc, m) = r = floor((P + 2^30) / 2^31), P = acc * m, for
 *   both signs of P (te_simd_requant's derivation; its saturation case needs m < 0).
 * - RoundingDivideByPOT(r, e) + zp = floor((r + 2^(e-1) - [r<0] + zp 2^e) / 2^e), and with
 *   m >= 0, [r<0] may be [acc<0] (r = 0 rounds to 0 either way).
 * - floor((floor(X / 2^31) + c) / 2^e) = floor((X + c 2^31) / 2^(31+e)) for integer c, so the
 *   result is floor((P + k - [acc<0] 2^31) / 2^(31+e)) with k = 2^30 + (2 zp + 1) 2^(30+e):
 *   the high word of that 64-bit sum shifted right by e - 1. |P| < 2^62 and |k| < 2^61, so
 *   the sum does not overflow. On the M4/M7 GCC makes it SMLAL, AND, SUBS, SBC, ASR, SSAT
 * (and two moves of k), about what the fast rule and its |acc| < 2^30 check take together.
 */
typedef struct {
    int64_t k;
    int32_t m, e1; /**< multiplier, e - 1 */
} te_fc_wide_t;

static inline te_fc_wide_t te_fc_wide_make(int32_t m, int32_t sh, int32_t output_offset)
{
    te_fc_wide_t q;
    q.e1 = -sh - 1;
    /* (2 zp + 1) 2^e1 fits in 30 bits for e1 <= 21; scaled by 2^31 by multiplication, as a
     * left shift of a negative value is undefined. */
    q.k = (int64_t)((2 * output_offset + 1) * (1 << q.e1)) * ((int64_t)1 << 31) + (1 << 30);
    q.m = m;
    return q;
}

static inline int32_t te_fc_wide(int32_t acc, te_fc_wide_t q)
{
    const int64_t t = q.k + (int64_t)acc * q.m - (int64_t)((uint32_t)acc & 0x80000000u);
    return te_ssat8((int32_t)(t >> 32) >> q.e1);
}

/** te_fc_wide for one output of a per-tensor layer in its domain, out of line: it is rare
 * (|acc| >= 2^30), and inlined it would crowd the registers of the blocks of four. */
static TE_SIMD_NOINLINE int8_t te_fc_out_wide(const te_fully_connected_params_t *p,
                                              int32_t acc)
{
    const te_fc_wide_t q = te_fc_wide_make(p->rq.multiplier[0], p->rq.shift[0],
                                           p->q.output_offset);
    return (int8_t)te_clamp(te_fc_wide(acc, q), p->q.act_min, p->q.act_max);
}

/** Whether |acc| < 2^30, te_simd_requant's domain, in two instructions (ADD, CMP): acc + 2^30
 * is in [1, 2^31 - 1] exactly then. Modulo conversion of the sum, as GCC and Clang define it. */
static inline int te_fc_acc_ok(int32_t acc)
{
    return (int32_t)((uint32_t)acc + (1u << 30)) > 0;
}

/**
 * Output of accumulator acc for a per-tensor layer whose multiplier and shift are in the fast
 * rule's domain: the fast rule where |acc| < 2^30, else te_fc_wide.
 */
static inline int8_t te_fc_out_pt(const te_fully_connected_params_t *p, te_simd_rq_t q,
                                  int32_t lo, int32_t hi, int32_t acc)
{
    if (te_fc_acc_ok(acc)) {
        return (int8_t)te_clamp(te_simd_requant(acc, q), lo, hi);
    }
    return te_fc_out_wide(p, acc);
}

/** Output of sum acc for a layer te_fc_few takes, its parameters read from p where used. */
static inline int8_t te_fc_few_out(const te_fully_connected_params_t *p, int32_t acc)
{
    acc = te_fc_wide(acc, te_fc_wide_make(p->rq.multiplier[0], p->rq.shift[0],
                                          p->q.output_offset));
    return (int8_t)te_clamp(acc, p->q.act_min, p->q.act_max);
}

/**
 * te_fc_few for `rows` outputs (1..3, a constant after inlining): each input row is read once,
 * each four of its values widened once (SXTAB16) and shared by the rows. One row at a time,
 * micro_speech_lstm's 3920 -> 3 widened its input three times: 10 instructions per four MACs
 * against 7 here.
 */
TE_SIMD_INLINE void te_fc_few_rows(const te_fully_connected_params_t *p, const int8_t *x,
                                    const int8_t *weights, const int32_t *bias, int8_t *output,
                                    int32_t rows)
{
    const int32_t n = p->in_features;
    int32_t b, i;
    for (b = 0; b < p->batches; ++b) {
        const int32_t x_off2 = te_simd_dup16(p->q.input_offset);
        const int8_t *w = weights, *w1 = w + n, *w2 = w1 + n;
        const int8_t *const x4 = x + (n & ~3);
        int32_t s0 = 0, s1 = 0, s2 = 0;
        if (bias != NULL) {
            s0 = bias[0];
            s1 = rows > 1 ? bias[1] : 0;
            s2 = rows > 2 ? bias[2] : 0;
        }
        /* A do-while loop: as a while loop, -Os tests at the top and jumps back. */
        if (x != x4) {
            do {
                const uint32_t t = TE_SIMD_NEXT4(x);
                const int32_t x_e = te_sxtab16(x_off2, t), x_o = te_sxtab16_r8(x_off2, t);
                uint32_t v = TE_SIMD_NEXT4(w);
                s0 = te_smlad(x_e, te_sxtb16(v), te_smlad(x_o, te_sxtb16_r8(v), s0));
                if (rows > 1) {
                    v = TE_SIMD_NEXT4(w1);
                    s1 = te_smlad(x_e, te_sxtb16(v), te_smlad(x_o, te_sxtb16_r8(v), s1));
                }
                if (rows > 2) {
                    v = TE_SIMD_NEXT4(w2);
                    s2 = te_smlad(x_e, te_sxtb16(v), te_smlad(x_o, te_sxtb16_r8(v), s2));
                }
            } while (x != x4);
        }
        for (i = n & 3; i > 0; --i) {
            const int32_t v = *x++ + p->q.input_offset;
            s0 += v * *w++;
            if (rows > 1) {
                s1 += v * *w1++;
            }
            if (rows > 2) {
                s2 += v * *w2++;
            }
        }
        *output++ = te_fc_few_out(p, s0);
        if (rows > 1) {
            *output++ = te_fc_few_out(p, s1);
        }
        if (rows > 2) {
            *output++ = te_fc_few_out(p, s2);
        }
    }
}

/**
 * Fewer than four outputs (hello_world's 16 -> 1, keyword_scrambled's 32 -> 2,
 * micro_speech_lstm's 3920 -> 3), per tensor, no weights offset, m >= 0 and shift in [-22, -1]
 * (te_fully_connected_simd checks): te_fc_few_rows, and nothing else. Run as tails of
 * te_fc_per_tensor, these layers paid for the set-up GCC hoists ahead of its blocks of four
 * (about 50 instructions, whether a block runs or not) and its prologue, a third of the call;
 * and te_fc_wide needs no exact fallback (keyword_scrambled's biases near -2^31 sent both of its
 * outputs there). Parameters are read from p where they are used: hoisted, they would outnumber
 * the registers and spill inside the sum's loop.
 */
static TE_SIMD_NOINLINE te_status_t te_fc_few(const te_fully_connected_params_t *p,
                                              const int8_t *input, const int8_t *weights,
                                              const int32_t *bias, int8_t *output)
{
    /* Each row count its own inlined loop, the count a constant in each. */
    if (p->out_features == 3) {
        te_fc_few_rows(p, input, weights, bias, output, 3);
    } else if (p->out_features == 2) {
        te_fc_few_rows(p, input, weights, bias, output, 2);
    } else {
        te_fc_few_rows(p, input, weights, bias, output, 1);
    }
    return TE_OK;
}

/**
 * One input feature and a bias, no weight offset (hello_world's 1 -> 16, a tiny regressor's
 * first layer), per tensor with the multiplier and shift in the fast rule's domain: output o is
 * bias[o] + x * w[o], so the per-block set-up of te_fc_per_tensor (four weight-row pointers, a
 * tail loop over a row's last values) was nearly all of that call, about 32 instructions an
 * output. Here four weights are one word, split by SXTB16 and multiplied by the row's value
 * (plus the input offset, in [-255, 255]: an int16 lane) with SMLABB / SMLATB onto their biases,
 * then stored as te_fc_per_tensor stores its blocks: about 12 instructions an output.
 */
static TE_SIMD_NOINLINE te_status_t te_fc_one_in(const te_fully_connected_params_t *p,
                                                 const int8_t *input, const int8_t *weights,
                                                 const int32_t *bias, int8_t *output)
{
    const te_simd_rq_t q = te_simd_rq_make(p->rq.multiplier[0], p->rq.shift[0],
                                           2 * p->q.output_offset + 1);
    const int32_t lo = p->q.act_min, hi = p->q.act_max, n_out = p->out_features;
    const uint32_t lo4 = te_simd_dup8(lo), hi4 = te_simd_dup8(hi);
    int32_t b, o;
    for (b = 0; b < p->batches; ++b) {
        const int32_t x = input[b] + p->q.input_offset;
        int8_t *out = output + b * n_out;
        for (o = 0; o + 4 <= n_out; o += 4) {
            const uint32_t t = te_simd_load4(weights + o);
            const int32_t we = te_sxtb16(t), wo = te_sxtb16_r8(t);
            const int32_t s0 = te_smlabb(we, x, bias[o]), s1 = te_smlabb(wo, x, bias[o + 1]);
            const int32_t s2 = te_smlatb(we, x, bias[o + 2]), s3 = te_smlatb(wo, x, bias[o + 3]);
            if (te_fc_acc_ok(s0) && te_fc_acc_ok(s1) && te_fc_acc_ok(s2) && te_fc_acc_ok(s3)) {
                te_simd_store4(out + o, te_clamp4(te_pack4(te_simd_requant(s0, q),
                                                           te_simd_requant(s1, q),
                                                           te_simd_requant(s2, q),
                                                           te_simd_requant(s3, q)),
                                                  lo4, hi4));
            } else {
                out[o] = te_fc_out_pt(p, q, lo, hi, s0);
                out[o + 1] = te_fc_out_pt(p, q, lo, hi, s1);
                out[o + 2] = te_fc_out_pt(p, q, lo, hi, s2);
                out[o + 3] = te_fc_out_pt(p, q, lo, hi, s3);
            }
        }
        for (; o < n_out; ++o) {
            out[o] = te_fc_out_pt(p, q, lo, hi, bias[o] + x * weights[o]);
        }
    }
    return TE_OK;
}

/**
 * The common case, per tensor with the multiplier and shift in the fast rule's domain (every
 * FC layer of the shared models; te_fully_connected_simd checks), as its own function. Four
 * outputs at a time are requantised, packed, clamped bytewise (SSUB8, SEL) and stored as one
 * word, about 7 instructions an output where the general loop's channel look-ups and branches
 * take 25-45: for small layers (hello_world's 1 -> 16) that, not the sums, was most of the
 * call. An accumulator outside |acc| < 2^30 sends its block of four through te_fc_wide
 * (te_fc_out_wide), output by output.
 */
static TE_SIMD_NOINLINE te_status_t te_fc_per_tensor(const te_fully_connected_params_t *p,
                                                     const int8_t *input,
                                                     const int8_t *weights,
                                                     const int32_t *bias, int8_t *output)
{
    const int32_t m = p->rq.multiplier[0], sh = p->rq.shift[0];
    const int32_t n = p->in_features, n_out = p->out_features, batches = p->batches;
    const int32_t lo = p->q.act_min, hi = p->q.act_max;
    const uint32_t lo4 = te_simd_dup8(lo), hi4 = te_simd_dup8(hi);
    const int32_t x_off2 = te_simd_dup16(p->q.input_offset);
    const int32_t w_off2 = te_simd_dup16(p->filter_offset);
    const int32_t by4 = p->filter_offset == 0 ? n_out & ~3 : 0;
    const te_simd_rq_t q = te_simd_rq_make(m, sh, 2 * p->q.output_offset + 1);
    int32_t b, o;
    for (b = 0; b < batches; ++b) {
        const int8_t *x = input + b * n;
        int8_t *out = output + b * n_out;
        const int8_t *w = weights;
        for (o = 0; o < by4; o += 4, w += 4 * n) {
            int32_t s[4];
            te_fc_sums4(x, w, n, x_off2, bias, o, s);
            if (te_fc_acc_ok(s[0]) && te_fc_acc_ok(s[1]) && te_fc_acc_ok(s[2]) &&
                te_fc_acc_ok(s[3])) {
                te_simd_store4(out + o, te_clamp4(te_pack4(te_simd_requant(s[0], q),
                                                           te_simd_requant(s[1], q),
                                                           te_simd_requant(s[2], q),
                                                           te_simd_requant(s[3], q)),
                                                  lo4, hi4));
            } else {
                out[o] = te_fc_out_pt(p, q, lo, hi, s[0]);
                out[o + 1] = te_fc_out_pt(p, q, lo, hi, s[1]);
                out[o + 2] = te_fc_out_pt(p, q, lo, hi, s[2]);
                out[o + 3] = te_fc_out_pt(p, q, lo, hi, s[3]);
            }
        }
        for (; o + 2 <= n_out; o += 2, w += 2 * n) {
            int32_t s[2] = {0, 0};
            if (bias != NULL) {
                s[0] = bias[o];
                s[1] = bias[o + 1];
            }
            te_simd_dot_1x2(x, w, n, n, x_off2, w_off2, s);
            out[o] = te_fc_out_pt(p, q, lo, hi, s[0]);
            out[o + 1] = te_fc_out_pt(p, q, lo, hi, s[1]);
        }
        if (o < n_out) {
            out[o] = te_fc_out_pt(p, q, lo, hi, te_simd_dot_1x1(x, w, n, x_off2, w_off2,
                                                                bias != NULL ? bias[o] : 0));
        }
    }
    return TE_OK;
}

/**
 * The general SIMD path: per channel, or a per-tensor multiplier or shift outside the fast
 * rule's domain. Output features in fours (no weight offset) or pairs, each block one pass over
 * the input row with SMLAD for two MACs per instruction, then te_fc_out per output.
 */
static TE_SIMD_NOINLINE te_status_t te_fc_general(const te_fully_connected_params_t *p,
                                                  const int8_t *input, const int8_t *weights,
                                                  const int32_t *bias, int8_t *output)
{
    const int32_t n = p->in_features, n_out = p->out_features, batches = p->batches;
    const int32_t x_off2 = te_simd_dup16(p->q.input_offset);
    const int32_t w_off2 = te_simd_dup16(p->filter_offset);
    const int32_t by4 = p->filter_offset == 0 ? n_out & ~3 : 0;
    te_fc_ctx_t k;
    int32_t b, o;
    k.mult = p->rq.multiplier;
    k.shift = p->rq.shift;
    k.per_channel = p->rq.per_channel;
    k.zp2p1 = 2 * p->q.output_offset + 1;
    k.lo = p->q.act_min;
    k.hi = p->q.act_max;
    k.r0 = te_fc_rq(k.mult[0], k.shift[0], k.zp2p1);
    for (b = 0; b < batches; ++b) {
        const int8_t *x = input + b * n;
        int8_t *out = output + b * n_out;
        const int8_t *w = weights;
        for (o = 0; o < by4; o += 4, w += 4 * n) {
            int32_t s[4];
            te_fc_sums4(x, w, n, x_off2, bias, o, s);
            out[o] = te_fc_out(p, &k, s[0], o);
            out[o + 1] = te_fc_out(p, &k, s[1], o + 1);
            out[o + 2] = te_fc_out(p, &k, s[2], o + 2);
            out[o + 3] = te_fc_out(p, &k, s[3], o + 3);
        }
        for (; o + 2 <= n_out; o += 2, w += 2 * n) {
            int32_t s[2];
            s[0] = bias != NULL ? bias[o] : 0;
            s[1] = bias != NULL ? bias[o + 1] : 0;
            te_simd_dot_1x2(x, w, n, n, x_off2, w_off2, s);
            out[o] = te_fc_out(p, &k, s[0], o);
            out[o + 1] = te_fc_out(p, &k, s[1], o + 1);
        }
        if (o < n_out) {
            out[o] = te_fc_out(p, &k, te_simd_dot_1x1(x, w, n, x_off2, w_off2,
                                                      bias != NULL ? bias[o] : 0), o);
        }
    }
    return TE_OK;
}

/**
 * One block, rows o .. o + 3, of the interleaved layout (te_fully_connected_i4_s8) times
 * input row x, whose n values (a multiple of 4) are read without an offset: w holds a word per
 * row per four inputs, the block's four words of each group side by side. One weight pointer
 * and no offset register leave GCC the registers for the whole loop (te_fc_dot_1x4 reloads its
 * end from the stack), and two words come in one LDRD: 23 instructions per 16 MACs where
 * te_fc_dot_1x4 takes 26.
 */
TE_SIMD_INLINE void te_fc_i4_block(const int8_t *x, const int32_t *w, int32_t n, int32_t s[4])
{
    int32_t s0 = s[0], s1 = s[1], s2 = s[2], s3 = s[3];
    const int8_t *const end = x + n;
    /* Unrolled twice it measured the same (47 instructions per 32 MACs against 23 per 16). */
    while (x != end) {
        const uint32_t t = TE_SIMD_NEXT4(x);
        const int32_t x_e = te_sxtb16(t), x_o = te_sxtb16_r8(t);
        const uint32_t a = (uint32_t)w[0], b = (uint32_t)w[1];
        const uint32_t c = (uint32_t)w[2], d = (uint32_t)w[3];
        w += 4;
        s0 = te_smlad(x_e, te_sxtb16(a), te_smlad(x_o, te_sxtb16_r8(a), s0));
        s1 = te_smlad(x_e, te_sxtb16(b), te_smlad(x_o, te_sxtb16_r8(b), s1));
        s2 = te_smlad(x_e, te_sxtb16(c), te_smlad(x_o, te_sxtb16_r8(c), s2));
        s3 = te_smlad(x_e, te_sxtb16(d), te_smlad(x_o, te_sxtb16_r8(d), s3));
    }
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
}

/**
 * te_fully_connected_i4_s8's SIMD loop, per tensor with the multiplier and shift in te_fc_wide's
 * domain: blocks of four rows (te_fc_i4_block), requantised by te_fc_wide, which is exact for
 * every int32 sum (keyword_scrambled's sums, with biases near -2^31, left the fast rule's
 * |acc| < 2^30 for half its outputs and took the out-of-line fallback), packed, clamped and
 * stored as one word; the last out_features % 4 rows one at a time.
 */
/** The last out_features % 4 rows of te_fc_i4_simd (stored row after row), out of line: inlined,
 * their set-up crowded the blocks' registers (about 100 instructions a call in spills). */
static TE_SIMD_NOINLINE void te_fc_i4_tail(const te_fully_connected_params_t *p,
                                           const int8_t *x, const int32_t *w,
                                           const int32_t *bias, int8_t *out, int32_t o)
{
    const te_fc_wide_t q = te_fc_wide_make(p->rq.multiplier[0], p->rq.shift[0],
                                           p->q.output_offset);
    int32_t i;
    for (; o < p->out_features; ++o) {
        const int8_t *xi = x;
        int32_t acc = bias[o];
        for (i = 0; i < p->in_features; i += 4) {
            const uint32_t t = TE_SIMD_NEXT4(xi), v = (uint32_t)*w++;
            acc = te_smlad(te_sxtb16(t), te_sxtb16(v),
                           te_smlad(te_sxtb16_r8(t), te_sxtb16_r8(v), acc));
        }
        out[o] = (int8_t)te_clamp(te_fc_wide(acc, q), p->q.act_min, p->q.act_max);
    }
}

static TE_SIMD_NOINLINE void te_fc_i4_simd(const te_fully_connected_params_t *p,
                                           const int8_t *input, const int32_t *weights,
                                           const int32_t *bias, int8_t *output)
{
    const int32_t n = p->in_features, n_out = p->out_features, by4 = n_out & ~3;
    const te_fc_wide_t q = te_fc_wide_make(p->rq.multiplier[0], p->rq.shift[0],
                                           p->q.output_offset);
    const uint32_t lo4 = te_simd_dup8(p->q.act_min), hi4 = te_simd_dup8(p->q.act_max);
    int32_t b, o;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *const x = input + b * n;
        int8_t *const out = output + b * n_out;
        const int32_t *w = weights;
        for (o = 0; o < by4; o += 4, w += n) {
            int32_t s[4];
            s[0] = bias[o];
            s[1] = bias[o + 1];
            s[2] = bias[o + 2];
            s[3] = bias[o + 3];
            te_fc_i4_block(x, w, n, s);
            te_simd_store4(out + o, te_clamp4(te_pack4(te_fc_wide(s[0], q), te_fc_wide(s[1], q),
                                                       te_fc_wide(s[2], q), te_fc_wide(s[3], q)),
                                              lo4, hi4));
        }
        if (by4 != n_out) {
            te_fc_i4_tail(p, x, w, bias, out, by4);
        }
    }
}
#endif

/** The arguments every int8 entry point checks. */
static inline te_status_t te_fc_check(const te_fully_connected_params_t *p, const int8_t *input,
                               const void *weights, int8_t *output)
{
    if (p == NULL || input == NULL || weights == NULL || output == NULL ||
        p->rq.multiplier == NULL || p->rq.shift == NULL) {
        return TE_ERR_ARG;
    }
    if (p->batches < 1 || p->in_features < 1 || p->out_features < 1 ||
        p->filter_offset < -127 || p->filter_offset > 128 ||
        (p->rq.per_channel && p->filter_offset != 0)) {
        return TE_ERR_ARG;
    }
    return TE_OK;
}

/** The portable loop: TFLite's reference, every build, any parameters. */
static void te_fc_portable(const te_fully_connected_params_t *p, const int8_t *input,
                           const int8_t *weights, const int32_t *bias, int8_t *output)
{
    int32_t b, o, i;
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
}

/** te_fully_connected_path_s8's rule, inlined into the entry points: there the compiler folds
 * it against the entry's own path, where a call cost about 25 instructions, a seventh of
 * hello_world's 16 -> 1. */
static inline te_fc_path_t te_fc_path(const te_fully_connected_params_t *p, const int32_t *bias)
{
#if TE_SIMD
    const int32_t m = p->rq.multiplier[0], sh = p->rq.shift[0];
    if (p->rq.per_channel || m < 0 || sh > -1 || sh < -22) {
        return TE_FC_PATH_GENERAL;
    }
    if (p->in_features == 1 && p->filter_offset == 0 && bias != NULL) {
        return TE_FC_PATH_ONE_IN;
    }
    if (p->out_features < 4 && p->filter_offset == 0) {
        return TE_FC_PATH_FEW;
    }
    return TE_FC_PATH_PER_TENSOR;
#else
    (void)p;
    (void)bias;
    return TE_FC_PATH_PORTABLE;
#endif
}

te_fc_path_t te_fully_connected_path_s8(const te_fully_connected_params_t *p,
                                        const int32_t *bias)
{
    return te_fc_path(p, bias);
}

/*
 * The entry points of the paths (te_fc.h, te_fc_path_t). Each SIMD path is a function of its own
 * above: inlined into one, GCC would hoist the set-up of all of them ahead of the choice, about
 * 100 instructions a call whichever runs; called from the generated code by name, a model links
 * the paths its layers take and no other.
 */
#if TE_SIMD
#define TE_FC_PATH_ENTRY(name, path, fn)                                                          \
    te_status_t name(const te_fully_connected_params_t *p, const int8_t *input,                  \
                     const int8_t *weights, const int32_t *bias, int8_t *output)                 \
    {                                                                                             \
        const te_status_t st = te_fc_check(p, input, weights, output);                           \
        if (st != TE_OK) {                                                                        \
            return st;                                                                            \
        }                                                                                         \
        if (te_fc_path(p, bias) != (path)) {                                                      \
            return TE_ERR_ARG;                                                                    \
        }                                                                                         \
        return fn(p, input, weights, bias, output);                                               \
    }
#else
#define TE_FC_PATH_ENTRY(name, path, fn)                                                          \
    te_status_t name(const te_fully_connected_params_t *p, const int8_t *input,                  \
                     const int8_t *weights, const int32_t *bias, int8_t *output)                 \
    {                                                                                             \
        return te_fully_connected_portable_s8(p, input, weights, bias, output);                  \
    }
#endif

te_status_t te_fully_connected_portable_s8(const te_fully_connected_params_t *p,
                                           const int8_t *input, const int8_t *weights,
                                           const int32_t *bias, int8_t *output)
{
    const te_status_t st = te_fc_check(p, input, weights, output);
    if (st == TE_OK) {
        te_fc_portable(p, input, weights, bias, output);
    }
    return st;
}

TE_FC_PATH_ENTRY(te_fully_connected_general_s8, TE_FC_PATH_GENERAL, te_fc_general)
TE_FC_PATH_ENTRY(te_fully_connected_one_in_s8, TE_FC_PATH_ONE_IN, te_fc_one_in)
TE_FC_PATH_ENTRY(te_fully_connected_few_s8, TE_FC_PATH_FEW, te_fc_few)
TE_FC_PATH_ENTRY(te_fully_connected_per_tensor_s8, TE_FC_PATH_PER_TENSOR, te_fc_per_tensor)

te_status_t te_fully_connected_s8(const te_fully_connected_params_t *p, const int8_t *input,
                                  const int8_t *weights, const int32_t *bias, int8_t *output)
{
    const te_status_t st = te_fc_check(p, input, weights, output);
    if (st != TE_OK) {
        return st;
    }
    switch (te_fc_path(p, bias)) {
#if TE_SIMD
    case TE_FC_PATH_GENERAL:
        return te_fc_general(p, input, weights, bias, output);
    case TE_FC_PATH_ONE_IN:
        return te_fc_one_in(p, input, weights, bias, output);
    case TE_FC_PATH_FEW:
        return te_fc_few(p, input, weights, bias, output);
    case TE_FC_PATH_PER_TENSOR:
        return te_fc_per_tensor(p, input, weights, bias, output);
#endif
    default:
        te_fc_portable(p, input, weights, bias, output);
        return TE_OK;
    }
}

/** Byte i of row o of te_fully_connected_i4_s8's interleaved weights (te_fc.h), by shifts of
 * the word, so that the layout does not depend on the byte order. */
static int32_t te_fc_i4_weight(const int32_t *w, int32_t n, int32_t by4, int32_t o, int32_t i)
{
    const int32_t k = o < by4 ? (o / 4) * n + (i / 4) * 4 + o % 4
                              : (by4 / 4) * n + (o - by4) * (n / 4) + i / 4;
    return (int8_t)(uint8_t)((uint32_t)w[k] >> (8 * (i % 4)));
}

te_status_t te_fully_connected_i4_s8(const te_fully_connected_params_t *p, const int8_t *input,
                                     const int32_t *weights, const int32_t *bias,
                                     int8_t *output)
{
    const te_status_t st = te_fc_check(p, input, weights, output);
    int32_t b, o, i;
    if (st != TE_OK) {
        return st;
    }
    if (bias == NULL || p->filter_offset != 0 || p->in_features % 4 != 0) {
        return TE_ERR_ARG;
    }
#if TE_SIMD
    if (!p->rq.per_channel && p->rq.multiplier[0] >= 0 && p->rq.shift[0] <= -1 &&
        p->rq.shift[0] >= -22) {
        te_fc_i4_simd(p, input, weights, bias, output);
        return TE_OK;
    }
#endif
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_row = input + b * p->in_features;
        for (o = 0; o < p->out_features; ++o) {
            /* Modulo 2^32, as the SIMD sums: the folded bias may be near 2^31. */
            uint32_t sum = (uint32_t)bias[o];
            int32_t acc;
            for (i = 0; i < p->in_features; ++i) {
                sum += (uint32_t)(te_fc_i4_weight(weights, p->in_features,
                                                  p->out_features & ~3, o, i) *
                                  (int32_t)in_row[i]);
            }
            acc = te_requantize(&p->rq, o, (int32_t)sum) + p->q.output_offset;
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
