#include "te_conv.h"
#include "te_requant16.h"
/* te_simd.h sets TE_SIMD: 1 on a core with the DSP extension in an optimised build, else 0 and
 * the portable loops are the whole kernel. The code generator ships it with this file. */
#include "te_simd.h"

static te_status_t te_conv2d_check(const te_conv2d_params_t *p, const int8_t *input,
                                   const int8_t *filter, const int8_t *output)
{
    if (p == NULL || input == NULL || filter == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    if (p->groups < 1 || p->input.c != p->filter.c * p->groups ||
        p->output.c % p->groups != 0 || p->output.c != p->filter.n ||
        p->input.n != p->output.n || p->stride_h < 1 || p->stride_w < 1 ||
        p->dilation_h < 1 || p->dilation_w < 1) {
        return TE_ERR_ARG;
    }
    return TE_OK;
}

#if TE_SIMD
/* ---- SIMD paths (te_simd.h): the same results as the portable loops, bit for bit ------------
 *
 * Pointwise: output channels in pairs, pixels in pairs; each 2x2 block is one inner product over
 * the input channels (te_simd_dot_2x2: per 4 channels, 4 loads, 8 extensions, 8 SMLADs for 16
 * MACs). Channel pairs are the outer loop, so their requantisation is set up once, and the input
 * offset's share, input_offset * sum(filter row), joins the bias: the inner loop needs no offset
 * register. In place: pixel pairs outside (the scratch sets two pixels' inputs aside), widened
 * to int16 lanes with the offset once, so that the 2x2 blocks extend only the filter (15
 * instructions for 16 MACs in the assembly loop). Generic: the same blocks over the taps of each
 * output pixel, the run of a filter row that lies inside the image being contiguous in NHWC
 * (one run per kernel row when dilation_w is 1 and there is one group). No im2col: the memory
 * plan is one for both paths (the in-place scratch is sized for either).
 */

/* Terms of one accumulator are |filter * (input + offset)| <= 128 * 255; with the offset folded
 * into the bias a partial sum can reach 128 * 256 per term, the bound te_simd_rq_ok checks. */
#define TE_CONV_MAX_TERM (128 * 256)

typedef struct {
    te_simd_rq_t q0, q1; /* requantisation of two channels */
    int32_t b0, b1;      /* their bias (input_offset * row sum added where folded) */
} te_conv_pair_t;

/** Requantisation and bias of output channels o0 and o1. */
TE_SIMD_INLINE te_conv_pair_t te_conv_pair(const te_conv2d_params_t *p, const int32_t *bias,
                                           int32_t o0, int32_t o1)
{
    const int32_t i0 = p->rq.per_channel ? o0 : 0, i1 = p->rq.per_channel ? o1 : 0;
    const int32_t zp2p1 = 2 * p->q.output_offset + 1;
    te_conv_pair_t c;
    c.q0 = te_simd_rq_make(p->rq.multiplier[i0], p->rq.shift[i0], zp2p1);
    c.q1 = te_simd_rq_make(p->rq.multiplier[i1], p->rq.shift[i1], zp2p1);
    c.b0 = bias != NULL ? bias[o0] : 0;
    c.b1 = bias != NULL ? bias[o1] : 0;
    return c;
}

/** As te_conv_pair, with input_offset * sum(filter row) folded into the bias (rows of k). */
TE_SIMD_INLINE te_conv_pair_t te_conv_pair_folded(const te_conv2d_params_t *p,
                                                  const int32_t *bias, const int8_t *filter,
                                                  int32_t k, int32_t o0, int32_t o1)
{
    te_conv_pair_t c = te_conv_pair(p, bias, o0, o1);
    c.b0 += p->q.input_offset * te_simd_sum(filter + o0 * k, k);
    c.b1 += p->q.input_offset * te_simd_sum(filter + o1 * k, k);
    return c;
}

/** Pointwise, one channel pair (rows w and w + ic) over all pixels, offset folded into c.
 * n: the inner-product length, ic itself or (when a multiple of 8) ic & ~7, which lets the
 * compiler drop the tail code. */
TE_SIMD_INLINE void te_conv2d_1x1_rows2(const int8_t *x, const int8_t *w, int32_t ic,
                                        int32_t n, int32_t n_px, int8_t *out, int32_t oc_n,
                                        te_conv_pair_t c, int full, const te_simd_act_t *a)
{
    int32_t px;
    for (px = 0; px + 2 <= n_px; px += 2) {
        int32_t s[4];
        s[0] = c.b0;
        s[1] = c.b1;
        s[2] = c.b0;
        s[3] = c.b1;
        te_simd_dot_2x2(x, ic, w, ic, n, 0, 0, s);
        te_simd_store_2x2(out, oc_n, s, c.q0, c.q1, full, a);
        x += 2 * ic;
        out += 2 * oc_n;
    }
    if (px < n_px) {
        int32_t s[2];
        s[0] = c.b0;
        s[1] = c.b1;
        te_simd_dot_1x2(x, w, ic, ic, 0, 0, s);
        out[0] = te_simd_out1(s[0], c.q0, a->lo, a->hi);
        out[1] = te_simd_out1(s[1], c.q1, a->lo, a->hi);
    }
}

TE_SIMD_NOINLINE static void te_conv2d_1x1_rows2_any(const int8_t *x, const int8_t *w,
                                                     int32_t ic, int32_t n_px, int8_t *out,
                                                     int32_t oc_n, te_conv_pair_t c,
                                                     const te_simd_act_t *a)
{
    te_conv2d_1x1_rows2(x, w, ic, ic, n_px, out, oc_n, c, 0, a);
}

/* The common case on its own: input channels a multiple of 8 and an activation SSAT clamps.
 * On Arm the whole pixel-pair loop is one block of assembly: around the 14-register inner loop
 * the compiler keeps every other value on the stack and spends about 60 instructions per 2x2
 * block outside it, against 43 here (4 to set up the accumulators and the row pointer, 26 to
 * requantise, 9 to store and step, 4 of loop control). Loop invariants are memory operands. */
TE_SIMD_NOINLINE static void te_conv2d_1x1_rows2_x8(const int8_t *x, const int8_t *w,
                                                    int32_t ic, int32_t n_px, int8_t *out,
                                                    int32_t oc_n, te_conv_pair_t c,
                                                    const te_simd_act_t *a)
{
#if TE_SIMD_ASM
    if (n_px >= 2 && ic >= 8) {
        /* ldrd pairs: (b0, b1), (m0, r0), (m1, r1), (dst, stride). */
        int32_t bias2[2], q0[2], q1[2], e[2], pairs = n_px >> 1;
        int8_t *dst = out;
        const int8_t *const w_end = w + ic;
        int32_t w_, s00, s01, s10, s11, t0, t1, t2, t3, t4, t5;
        bias2[0] = c.b0;
        bias2[1] = c.b1;
        q0[0] = c.q0.mult;
        q0[1] = c.q0.round;
        q1[0] = c.q1.mult;
        q1[1] = c.q1.round;
        e[0] = c.q0.shift;
        e[1] = c.q1.shift;
        __asm__ volatile(
            "0:\n\t"
            "ldrd %[s00], %[s01], %[bias2]\n\t"
            "mov %[s10], %[s00]\n\t"
            "mov %[s11], %[s01]\n\t"
            "sub %[w], %[wend], %[st]\n\t"
            "tst %[st], #8\n\t" /* 16 values per iteration; an odd 8 enters halfway */
            "bne 2f\n\t"
            "1:\n\t" TE_ASM_STEP_2X2("st", "st", TE_ASM_X_PLAIN)
                TE_ASM_STEP_2X2("st", "st", TE_ASM_X_PLAIN)
            "2:\n\t" TE_ASM_STEP_2X2("st", "st", TE_ASM_X_PLAIN)
                TE_ASM_STEP_2X2("st", "st", TE_ASM_X_PLAIN)
            "cmp %[w], %[wend]\n\t"
            "bne 1b\n\t"
            "add %[x], %[x], %[st]\n\t" /* past the pair's second pixel */
            "ldrd %[t0], %[t1], %[q0]\n\t"
            "ldr %[t2], %[e0]\n\t"
            TE_ASM_REQUANT("s00", "s00", "t0", "t1", "t2", "t3")
            TE_ASM_REQUANT("s10", "s10", "t0", "t1", "t2", "t3")
            "ldrd %[t0], %[t1], %[q1]\n\t"
            "ldr %[t2], %[e1]\n\t"
            TE_ASM_REQUANT("s01", "s01", "t0", "t1", "t2", "t3")
            TE_ASM_REQUANT("s11", "s11", "t0", "t1", "t2", "t3")
            "ldr %[t0], %[dst]\n\t"
            "ldr %[t1], %[stride]\n\t"
            "strb %[s00], [%[t0]]\n\t"
            "strb %[s01], [%[t0], #1]\n\t"
            "add %[t0], %[t0], %[t1]\n\t"
            "strb %[s10], [%[t0]]\n\t"
            "strb %[s11], [%[t0], #1]\n\t"
            "add %[t0], %[t0], %[t1]\n\t"
            "str %[t0], %[dst]\n\t"
            "ldr %[t0], %[pairs]\n\t"
            "subs %[t0], %[t0], #1\n\t"
            "str %[t0], %[pairs]\n\t"
            "bne 0b\n\t"
            : [x] "+r"(x), [w] "=&r"(w_), [s00] "=&r"(s00), [s01] "=&r"(s01),
              [s10] "=&r"(s10), [s11] "=&r"(s11), [t0] "=&r"(t0), [t1] "=&r"(t1),
              [t2] "=&r"(t2), [t3] "=&r"(t3), [t4] "=&r"(t4), [t5] "=&r"(t5),
              [dst] "+m"(dst), [pairs] "+m"(pairs)
            : [wend] "r"(w_end), [st] "r"(ic), [bias2] "m"(bias2), [q0] "m"(q0),
              [q1] "m"(q1), [e0] "m"(e[0]), [e1] "m"(e[1]), [stride] "m"(oc_n)
            : "cc", "memory");
        if (n_px & 1) {
            te_conv2d_1x1_rows2_any(x, w, ic, 1, dst, oc_n, c, a);
        }
        return;
    }
    te_conv2d_1x1_rows2_any(x, w, ic, n_px, out, oc_n, c, a);
#else
    te_conv2d_1x1_rows2(x, w, ic, ic & ~7, n_px, out, oc_n, c, 1, a);
#endif
}

/** Pointwise convolution over the first n_px pixels, channel pairs outside, pixel pairs
 * inside. */
static void te_conv2d_1x1_simd(const te_conv2d_params_t *p, const int8_t *input,
                               const int8_t *filter, const int32_t *bias, int8_t *output,
                               int32_t n_px)
{
    const int32_t ic = p->input.c, oc_n = p->output.c;
    const te_simd_act_t a = te_simd_act(&p->q);
    const int fast = (ic & 7) == 0 && te_simd_act_full(&p->q);
    int32_t oc, px;
    for (oc = 0; oc + 2 <= oc_n; oc += 2) {
        const te_conv_pair_t c = te_conv_pair_folded(p, bias, filter, ic, oc, oc + 1);
        if (fast) {
            te_conv2d_1x1_rows2_x8(input, filter + oc * ic, ic, n_px, output + oc, oc_n, c, &a);
        } else {
            te_conv2d_1x1_rows2_any(input, filter + oc * ic, ic, n_px, output + oc, oc_n, c,
                                    &a);
        }
    }
    if (oc < oc_n) {
        const te_conv_pair_t c = te_conv_pair_folded(p, bias, filter, ic, oc, oc);
        const int8_t *w = filter + oc * ic;
        const int8_t *x = input;
        int8_t *out = output + oc;
        for (px = 0; px + 2 <= n_px; px += 2) {
            int32_t s[2];
            s[0] = c.b0;
            s[1] = c.b0;
            te_simd_dot_2x1(x, ic, w, ic, 0, s);
            out[0] = te_simd_out1(s[0], c.q0, a.lo, a.hi);
            out[oc_n] = te_simd_out1(s[1], c.q0, a.lo, a.hi);
            x += 2 * ic;
            out += 2 * oc_n;
        }
        if (px < n_px) {
            out[0] = te_simd_out1(te_simd_dot_1x1(x, w, ic, 0, 0, c.b0), c.q0, a.lo, a.hi);
        }
    }
}

/** Loop-invariant views of a call's requantisation, hoisted out of the block loops. */
typedef struct {
    const int32_t *mult;         /* this block's entries */
    const int8_t *shift;
    int32_t step;                /* entries per output channel: 1 per channel, 0 per tensor */
    int32_t zp2p1;               /* 2 * output_offset + 1 */
} te_conv_rq_iter_t;

TE_SIMD_INLINE te_conv_rq_iter_t te_conv_rq_iter(const te_conv2d_params_t *p)
{
    te_conv_rq_iter_t r;
    r.mult = p->rq.multiplier;
    r.shift = p->rq.shift;
    r.step = p->rq.per_channel ? 1 : 0;
    r.zp2p1 = 2 * p->q.output_offset + 1;
    return r;
}

/** Requantisation of the iterator's channel + k. */
TE_SIMD_INLINE te_simd_rq_t te_conv_rq_at(const te_conv_rq_iter_t *r, int32_t k)
{
    return te_simd_rq_make(r->mult[k * r->step], r->shift[k * r->step], r->zp2p1);
}

/** All output channels of the two pixels widened in q (te_simd_widen2) into dst and
 * dst + stride: 2x2 blocks, channel pairs in order, the odd last channel as its row twice. */
TE_SIMD_INLINE void te_conv2d_1x1_q15_simd(const te_conv2d_params_t *p, const int8_t *q,
                                           const int8_t *filter, const int32_t *bias,
                                           int8_t *dst, int32_t stride, int32_t n, int full,
                                           const te_simd_act_t *a)
{
    const int32_t ic = p->input.c, oc_n = p->output.c;
    te_conv_rq_iter_t r = te_conv_rq_iter(p);
    const int8_t *w = filter;
    int32_t oc;
    for (oc = 0; oc + 2 <= oc_n; oc += 2) {
        int32_t s[4];
        if (bias != NULL) {
            s[0] = s[2] = bias[oc];
            s[1] = s[3] = bias[oc + 1];
        } else {
            s[0] = s[1] = s[2] = s[3] = 0;
        }
        te_simd_dot_2x2_q15(q, w, ic, n, s);
        w += 2 * ic;
        te_simd_store_2x2(dst + oc, stride, s, te_conv_rq_at(&r, 0), te_conv_rq_at(&r, 1), full,
                          a);
        r.mult += 2 * r.step;
        r.shift += 2 * r.step;
    }
    if (oc < oc_n) {
        int32_t s[4];
        s[0] = s[1] = s[2] = s[3] = bias != NULL ? bias[oc] : 0;
        te_simd_dot_2x2_q15(q, w, 0, n, s);
        dst[oc] = te_simd_out1(s[0], te_conv_rq_at(&r, 0), a->lo, a->hi);
        dst[stride + oc] = te_simd_out1(s[2], te_conv_rq_at(&r, 0), a->lo, a->hi);
    }
}

TE_SIMD_NOINLINE static void te_conv2d_1x1_q15_any(const te_conv2d_params_t *p,
                                                   const int8_t *q, const int8_t *filter,
                                                   const int32_t *bias, int8_t *dst,
                                                   int32_t stride, const te_simd_act_t *a)
{
    te_conv2d_1x1_q15_simd(p, q, filter, bias, dst, stride, p->input.c, 0, a);
}

#if TE_SIMD_ASM
/* The 2x2 q15 step: 4 input values of both pixels (one LDM of their four words of widened
 * lanes) times two filter rows (w + st loaded first, then w, which steps on): 15 instructions
 * for 16 MACs. LDM fills its registers in ascending order, so xa-xd are pinned to r0-r3. */
#define TE_ASM_STEP_2X2_Q15                                                                     \
    "ldr %[t0], [%[w], %[st]]\n\t"                                                              \
    "sxtb16 %[t1], %[t0]\n\t"                                                                   \
    "sxtb16 %[t0], %[t0], ror #8\n\t"                                                           \
    "ldmia %[q]!, {%[xa], %[xb], %[xc], %[xd]}\n\t"                                             \
    "smlad %[s01], %[xa], %[t1], %[s01]\n\t"                                                    \
    "smlad %[s01], %[xb], %[t0], %[s01]\n\t"                                                    \
    "smlad %[s11], %[xc], %[t1], %[s11]\n\t"                                                    \
    "smlad %[s11], %[xd], %[t0], %[s11]\n\t"                                                    \
    "ldr %[t0], [%[w]], #4\n\t"                                                                 \
    "sxtb16 %[t1], %[t0]\n\t"                                                                   \
    "sxtb16 %[t0], %[t0], ror #8\n\t"                                                           \
    "smlad %[s00], %[xa], %[t1], %[s00]\n\t"                                                    \
    "smlad %[s00], %[xb], %[t0], %[s00]\n\t"                                                    \
    "smlad %[s10], %[xc], %[t1], %[s10]\n\t"                                                    \
    "smlad %[s10], %[xd], %[t0], %[s10]\n\t"
#endif

/* The common case on its own (input channels a multiple of 8, an activation SSAT clamps). On
 * Arm with per-channel requantisation, a bias and a word-aligned q, the loop over channel
 * pairs is one block of assembly, for the reasons given at te_conv2d_1x1_rows2_x8: 15
 * instructions per 16 MACs inside, about 50 per 2x2 block around it (bias, requantisation
 * parameters, 4 requantisations, 4 stores). All 14 registers go to the inner loop; the
 * per-pair state lives in memory operands and the loop's end register doubles as the
 * requantisation's temporary. */
TE_SIMD_NOINLINE static void te_conv2d_1x1_q15_x8(const te_conv2d_params_t *p,
                                                  const int8_t *q, const int8_t *filter,
                                                  const int32_t *bias, int8_t *dst,
                                                  int32_t stride, const te_simd_act_t *a)
{
#if TE_SIMD_ASM
    const int32_t ic = p->input.c, oc_n = p->output.c;
    if (p->rq.per_channel && bias != NULL && oc_n >= 2 && ic >= 8 &&
        ((uintptr_t)q & 3) == 0) {
        const int8_t *const q0 = q;
        const int32_t *mp = p->rq.multiplier, *bp = bias;
        const int8_t *shp = p->rq.shift;
        const int32_t zp2p1 = 2 * p->q.output_offset + 1;
        int8_t *const d_end = dst + (oc_n & ~1);
        const int8_t *w = filter, *end = q + 4 * ic;
        int8_t *d = dst;
        int32_t s00, s01, s10, s11, t0, t1;
        register int32_t xa __asm__("r0"), xb __asm__("r1"), xc __asm__("r2"),
            xd __asm__("r3");
        __asm__ volatile(
            "0:\n\t"
            "ldr %[t0], %[bp]\n\t"
            "ldrd %[s00], %[s01], [%[t0]], #8\n\t"
            "str %[t0], %[bp]\n\t"
            "mov %[s10], %[s00]\n\t"
            "mov %[s11], %[s01]\n\t"
            "tst %[st], #8\n\t" /* 16 values per iteration; an odd 8 enters halfway */
            "bne 2f\n\t"
            "1:\n\t" TE_ASM_STEP_2X2_Q15 TE_ASM_STEP_2X2_Q15
            "2:\n\t" TE_ASM_STEP_2X2_Q15 TE_ASM_STEP_2X2_Q15
            "cmp %[q], %[end]\n\t"
            "bne 1b\n\t"
            "sub %[q], %[q], %[st], lsl #2\n\t" /* back to the pixels' first lanes */
            "add %[w], %[w], %[st]\n\t"         /* the next pair's first row */
            "ldr %[xa], %[mp]\n\t"
            "ldrd %[t0], %[t1], [%[xa]], #8\n\t" /* multipliers */
            "str %[xa], %[mp]\n\t"
            "ldr %[xa], %[shp]\n\t"
            "ldrsb %[xc], [%[xa], #1]\n\t" /* int8 shifts sh < 0: e = -sh, e - 1 = ~sh */
            "ldrsb %[xb], [%[xa]], #2\n\t"
            "str %[xa], %[shp]\n\t"
            "ldr %[xa], %[zz]\n\t"
            "mvn %[xd], %[xb]\n\t"
            "lsl %[xd], %[xa], %[xd]\n\t" /* round of channel 0 */
            "rsb %[xb], %[xb], #0\n\t"
            TE_ASM_REQUANT("s00", "s00", "t0", "xd", "xb", "end")
            TE_ASM_REQUANT("s10", "s10", "t0", "xd", "xb", "end")
            "mvn %[xd], %[xc]\n\t"
            "lsl %[xd], %[xa], %[xd]\n\t" /* round of channel 1 */
            "rsb %[xc], %[xc], #0\n\t"
            TE_ASM_REQUANT("s01", "s01", "t1", "xd", "xc", "end")
            TE_ASM_REQUANT("s11", "s11", "t1", "xd", "xc", "end")
            "add %[end], %[q], %[st], lsl #2\n\t"
            "ldr %[t0], %[d]\n\t"
            "ldr %[t1], %[stride]\n\t"
            "strb %[s10], [%[t0], %[t1]]\n\t"
            "strb %[s00], [%[t0]], #1\n\t"
            "strb %[s11], [%[t0], %[t1]]\n\t"
            "strb %[s01], [%[t0]], #1\n\t"
            "str %[t0], %[d]\n\t"
            "ldr %[t1], %[dend]\n\t"
            "cmp %[t0], %[t1]\n\t"
            "bne 0b\n\t"
            : [q] "+r"(q), [w] "+r"(w), [end] "+r"(end), [s00] "=&r"(s00), [s01] "=&r"(s01),
              [s10] "=&r"(s10), [s11] "=&r"(s11), [t0] "=&r"(t0), [t1] "=&r"(t1),
              [xa] "=&r"(xa), [xb] "=&r"(xb), [xc] "=&r"(xc), [xd] "=&r"(xd), [bp] "+m"(bp),
              [mp] "+m"(mp), [shp] "+m"(shp), [d] "+m"(d)
            : [st] "r"(ic), [zz] "m"(zp2p1), [stride] "m"(stride), [dend] "m"(d_end)
            : "cc", "memory");
        if (oc_n & 1) { /* the last channel, its row twice */
            const int32_t oc = oc_n - 1;
            const te_simd_rq_t rq = te_simd_rq_channel(&p->rq, oc, p->q.output_offset);
            int32_t s[4];
            s[0] = s[1] = s[2] = s[3] = bias[oc];
            te_simd_dot_2x2_q15(q0, filter + oc * ic, 0, ic, s);
            dst[oc] = te_simd_out1(s[0], rq, a->lo, a->hi);
            dst[stride + oc] = te_simd_out1(s[2], rq, a->lo, a->hi);
        }
        return;
    }
    te_conv2d_1x1_q15_any(p, q, filter, bias, dst, stride, a);
#else
    te_conv2d_1x1_q15_simd(p, q, filter, bias, dst, stride, p->input.c & ~7, 1, a);
#endif
}

/**
 * In-place pointwise convolution, in the portable path's pixel order, two pixels at a time:
 * both are widened to int16 lanes with the input offset into the scratch (te_simd_widen2),
 * which frees their bytes, and their outputs then go straight to their places. Going forwards
 * (outputs no wider than inputs) pixel pair i writes below (i + 2) * ic, over inputs already
 * read; going backwards it writes from i * oc >= i * ic on, over the same. An odd last pixel
 * goes as a pair of itself, both outputs on the same bytes.
 */
static void te_conv2d_1x1_inplace_simd(const te_conv2d_params_t *p, const int8_t *input,
                                       const int8_t *filter, const int32_t *bias,
                                       int8_t *output, int8_t *scratch)
{
    const int32_t ic = p->input.c, oc_n = p->output.c;
    const int32_t n_px = p->output.n * p->output.h * p->output.w;
    const int32_t off2 = te_simd_dup16(p->q.input_offset);
    const te_simd_act_t a = te_simd_act(&p->q);
    const int fast = (ic & 7) == 0 && te_simd_act_full(&p->q);
    const int forward = oc_n <= ic;
    int32_t done;
    for (done = 0; done < n_px; done += 2) {
        const int two = done + 2 <= n_px;
        const int32_t i = forward ? done : (two ? n_px - done - 2 : 0);
        const int8_t *x = input + i * ic;
        te_simd_widen2(scratch, x, two ? x + ic : x, ic, off2);
        if (fast) {
            te_conv2d_1x1_q15_x8(p, scratch, filter, bias, output + i * oc_n, two ? oc_n : 0,
                                 &a);
        } else {
            te_conv2d_1x1_q15_any(p, scratch, filter, bias, output + i * oc_n, two ? oc_n : 0,
                                  &a);
        }
    }
}

/** Input channels from which the out-of-place pointwise kernel widens pixel pairs. */
#define TE_CONV_1X1_WIDEN_MIN_IC 16

/**
 * Out-of-place pointwise convolution as the in-place kernel runs it: each pixel pair widened to
 * int16 once (te_simd_widen2) and run across every output channel by the q15 product, where
 * the channel-pair loop of te_conv2d_1x1_simd widens every pair again for every channel pair.
 * With 16 to 256 input channels that is 0.70-0.82x the instructions (person_detect's and kws's
 * pointwise layers, m4 -O2, benchmarks/vs_cmsis_nn.py); with 8, the channel-pair loop is
 * faster. The work space (4 * ic bytes, word-aligned) is the end of the output buffer, as in
 * te_conv2d_im2col_simd: pairs go while their outputs end before it, and the caller computes
 * the remaining pixels (returned: the pixels done) with te_conv2d_1x1_simd, overwriting it.
 * Its domain (te_conv2d_1x1_widens, the twin of pointwise_widens in tinyengine/ops/conv.py):
 * 16 input channels or more, and an output that holds a pixel pair besides the work space.
 */
static int te_conv2d_1x1_widens(const te_conv2d_params_t *p)
{
    const int32_t ic = p->input.c, oc_n = p->output.c;
    const int32_t n_px = p->output.n * p->output.h * p->output.w;
    return ic >= TE_CONV_1X1_WIDEN_MIN_IC && n_px >= 2 && (n_px - 2) * oc_n >= 4 * ic + 3;
}

/** Returns the pixels done; only for layers inside te_conv2d_1x1_widens. */
static int32_t te_conv2d_1x1_widened_simd(const te_conv2d_params_t *p, const int8_t *input,
                                          const int8_t *filter, const int32_t *bias,
                                          int8_t *output)
{
    const int32_t ic = p->input.c, oc_n = p->output.c;
    const int32_t n_px = p->output.n * p->output.h * p->output.w;
    const int32_t off2 = te_simd_dup16(p->q.input_offset);
    const te_simd_act_t a = te_simd_act(&p->q);
    const int fast = (ic & 7) == 0 && te_simd_act_full(&p->q);
    int8_t *const end = output + n_px * oc_n;
    int8_t *q;
    int32_t px;
    q = end - 4 * ic - (int32_t)((uintptr_t)(end - 4 * ic) & 3);
    for (px = 0; px + 2 <= n_px && output + (px + 2) * oc_n <= q; px += 2) {
        const int8_t *x = input + px * ic;
        te_simd_widen2(q, x, x + ic, ic, off2);
        if (fast) {
            te_conv2d_1x1_q15_x8(p, q, filter, bias, output + px * oc_n, oc_n, &a);
        } else {
            te_conv2d_1x1_q15_any(p, q, filter, bias, output + px * oc_n, oc_n, &a);
        }
    }
    return px;
}

/** First and one-past-last kernel index whose tap, at in0 + k * dilation, lies in [0, size). */
static void te_conv_valid_taps(int32_t in0, int32_t dilation, int32_t size, int32_t taps,
                               int32_t *k0, int32_t *k1)
{
    int32_t a = in0 < 0 ? (-in0 + dilation - 1) / dilation : 0;
    int32_t b = size - in0 <= 0 ? 0 : (size - in0 + dilation - 1) / dilation;
    b = b < taps ? b : taps;
    *k0 = a;
    *k1 = b > a ? b : a;
}

/**
 * Generic convolution: output channel pairs (within a group) outside; inside, pixel pairs whose
 * taps all fall inside the image columns take 2x2 blocks, the other pixels 1x2 blocks over their
 * valid taps. Pixel pairs whose column taps are all valid have the input offset folded into
 * the bias as in the pointwise path, less the share of the kernel rows that fall outside the
 * image in their output row. Only output pixels px0 .. px1 - 1 (in NHW
 * order) are computed: te_conv2d_im2col_simd may have done the others.
 */
static void te_conv2d_simd(const te_conv2d_params_t *p, const int8_t *input,
                           const int8_t *filter, const int32_t *bias, int8_t *output,
                           int32_t px0, int32_t px1)
{
    const int32_t fh = p->filter.h, fw = p->filter.w, icg = p->filter.c;
    const int32_t c_in = p->input.c, oc_n = p->output.c, ocg = oc_n / p->groups;
    const int32_t k = fh * fw * icg; /* one filter row */
    const int32_t in_w = p->input.w, dh = p->dilation_h, dw = p->dilation_w;
    const int32_t xs = p->stride_w * c_in; /* from one output pixel's taps to the next's */
    const int32_t off2 = te_simd_dup16(p->q.input_offset);
    const int32_t lo = p->q.act_min, hi = p->q.act_max;
    const te_simd_act_t act = te_simd_act(&p->q);
    /* One run of contiguous values per kernel row, or one per tap. */
    const int row_runs = dw == 1 && p->groups == 1;
    int32_t oc, rows, b, oy, ox, ky, kx;
    if (px0 >= px1) {
        return;
    }
    for (oc = 0; oc < oc_n; oc += rows) {
        /* A pair never straddles two groups: an odd group ends with a single channel. */
        const int32_t ws = ((oc % ocg) + 2 <= ocg ? 1 : 0) * k;
        const int32_t ic0 = (oc / ocg) * icg;
        const int8_t *w = filter + oc * k;
        te_conv_pair_t c, cf, cr;
        rows = ws != 0 ? 2 : 1;
        c = te_conv_pair(p, bias, oc, oc + rows - 1);
        cf = te_conv_pair_folded(p, bias, filter, k, oc, oc + rows - 1);
        for (b = 0; b < p->output.n; ++b) {
            for (oy = 0; oy < p->output.h; ++oy) {
                const int32_t in_y0 = oy * p->stride_h - p->pad_h;
                const int32_t row_px = (b * p->output.h + oy) * p->output.w;
                /* This row's part of the pixel range. */
                const int32_t ox_end = px1 - row_px < p->output.w ? px1 - row_px : p->output.w;
                int32_t ky0, ky1;
                int8_t *out;
                if (row_px + p->output.w <= px0 || row_px >= px1) {
                    continue;
                }
                ox = px0 > row_px ? px0 - row_px : 0;
                out = output + (row_px + ox) * oc_n + oc;
                te_conv_valid_taps(in_y0, dh, p->input.h, fh, &ky0, &ky1);
                /* The folded offset less the share of the kernel rows outside the image. */
                cr = cf;
                for (ky = 0; ky < fh; ++ky) {
                    if (ky < ky0 || ky >= ky1) {
                        cr.b0 -= p->q.input_offset * te_simd_sum(w + ky * fw * icg, fw * icg);
                        cr.b1 -= p->q.input_offset * te_simd_sum(w + ws + ky * fw * icg,
                                                                 fw * icg);
                    }
                }
                while (ox < ox_end) {
                    const int32_t in_x0 = ox * p->stride_w - p->pad_w;
                    const int32_t base = ((b * p->input.h + in_y0) * in_w + in_x0) * c_in + ic0;
                    int32_t kx0, kx1, kx0b, kx1b;
                    te_conv_valid_taps(in_x0, dw, in_w, fw, &kx0, &kx1);
                    te_conv_valid_taps(in_x0 + p->stride_w, dw, in_w, fw, &kx0b, &kx1b);
                    if (ox + 1 < ox_end && kx0 == 0 && kx1 == fw && kx0b == 0 &&
                        kx1b == fw) {
                        /* Two pixels, every column tap inside the image: the offset
                         * folded into the bias (cr: for this row's valid kernel rows). */
                        int32_t s[4];
                        s[0] = s[2] = cr.b0;
                        s[1] = s[3] = cr.b1;
                        for (ky = ky0; ky < ky1; ++ky) {
                            const int8_t *x = input + (base + ky * dh * in_w * c_in);
                            const int8_t *wr = w + ky * fw * icg;
                            if (row_runs) {
                                te_simd_dot_2x2(x, xs, wr, ws, fw * icg, 0, 0, s);
                            } else {
                                for (kx = 0; kx < fw; ++kx) {
                                    te_simd_dot_2x2(x + kx * dw * c_in, xs, wr + kx * icg, ws,
                                                    icg, 0, 0, s);
                                }
                            }
                        }
                        if (rows == 2) {
                            te_simd_store_2x2(out, oc_n, s, cr.q0, cr.q1, 0, &act);
                        } else {
                            out[0] = te_simd_out1(s[0], cr.q0, lo, hi);
                            out[oc_n] = te_simd_out1(s[2], cr.q0, lo, hi);
                        }
                        out += 2 * oc_n;
                        ox += 2;
                    } else {
                        /* One pixel over its valid taps, offset in the loop. */
                        int32_t s[2];
                        s[0] = c.b0;
                        s[1] = c.b1;
                        for (ky = ky0; ky < ky1; ++ky) {
                            const int32_t row = base + ky * dh * in_w * c_in;
                            const int8_t *wr = w + ky * fw * icg;
                            if (row_runs) {
                                te_simd_dot_1x2(input + (row + kx0 * c_in), wr + kx0 * icg, ws,
                                                (kx1 - kx0) * icg, off2, 0, s);
                            } else {
                                for (kx = kx0; kx < kx1; ++kx) {
                                    te_simd_dot_1x2(input + (row + kx * dw * c_in), wr + kx * icg,
                                                    ws, icg, off2, 0, s);
                                }
                            }
                        }
                        out[0] = te_simd_out1(s[0], c.q0, lo, hi);
                        if (rows == 2) {
                            out[1] = te_simd_out1(s[1], c.q1, lo, hi);
                        }
                        out += oc_n;
                        ox += 1;
                    }
                }
            }
        }
    }
}

/* ---- im2col: convolutions whose kernel row is short ---------------------------------------
 *
 * With few input channels (kws's first layer: a 10x4 kernel over 1 channel, stride 2) each
 * kernel row of te_conv2d_simd is a run of a few values, and the per-run set-up costs more than
 * its MACs. Here, as in CMSIS-NN's arm_convolve_s8, the patches of two output pixels are
 * gathered into an im2col column each (padding as the input zero point), widened to int16 with
 * the input offset once (te_simd_widen2: padding widens to 0), and every output channel pair
 * runs the pointwise 2x2 q15 product over all fh * fw * c values of the pair
 * (te_conv2d_1x1_q15_x8, 15 instructions per 16 MACs in its assembly): one widening serves
 * every output channel.
 *
 * Work space: 6 bytes per patch value (two int8 columns, two widened). Scratch from the caller
 * would add that to the arena exactly where it peaks on such a layer (a model's first
 * convolution, whose input and output are the whole live set), so the kernel borrows the end
 * of its own output buffer instead, which the pixel pairs fill from the front: a pair goes
 * through im2col while its outputs end before the work space; the last few pixels then take
 * te_conv2d_simd, which overwrites the work space with their outputs. The output does not
 * overlap the input (no out-of-place kernel allows that).
 */

/** Rows of at most this many values (filter.w * filter.c) take the im2col path: 32 takes
 * resnet's strided 1x1 over 32 channels too (1.07x CMSIS-NN through te_conv2d_simd, below 1x
 * here; benchmarks/vs_cmsis_nn.py). Longer rows take it when at least TE_CONV_IM2COL_MIN_OC
 * output channels share each widened pair: resnet's 3x3 convolutions over 16 and 32 channels
 * drop from 0.83-0.95x CMSIS-NN to 0.64-0.76x (m4 -O2); with fewer channels the widening,
 * about 1.5 / channels instructions per MAC, eats the gain over te_conv2d_simd's int8 rows. */
#define TE_CONV_IM2COL_MAX_ROW 32
#define TE_CONV_IM2COL_MIN_OC 8

/** Bytes of the work space for patches of k values: the two int8 columns (unless the input
 * channels are a multiple of 4: te_conv_im2col_q15 needs none), then the widened pair (4 * k
 * bytes, word-aligned: up to 3 bytes of alignment). */
static int32_t te_conv2d_im2col_bytes(const te_conv2d_params_t *p)
{
    const int32_t k = p->filter.h * p->filter.w * p->filter.c;
    return ((p->input.c & 3) == 0 ? 4 * k : 6 * k) + 3;
}

/** s += the 2x2 q15 product of the n values widened at q (te_simd_widen2's layout) with filter
 * rows w + 2j * k and w + (2j + 1) * k, for channel pairs j < pairs, whose four sums each lie
 * at sums + 16j (s[0..3] of te_simd_dot_2x2_q15). On Arm, with n a multiple of 8 and q
 * word-aligned, one block of assembly around TE_ASM_STEP_2X2_Q15: 15 instructions per 16 MACs
 * and 19 per channel pair around them; its 14 registers as te_conv2d_1x1_q15_x8's, the sums'
 * pointer a memory operand. */
TE_SIMD_NOINLINE static void te_conv_q15_acc(const int8_t *q, const int8_t *w, int32_t k,
                                             int32_t n, int8_t *sums, int32_t pairs)
{
    int32_t j, i;
#if TE_SIMD_ASM
    if (n >= 8 && (n & 7) == 0 && ((uintptr_t)q & 3) == 0 && pairs >= 1) {
        const int8_t *const q_end = q + 4 * n;
        int8_t *sp = sums;
        int8_t *const sp_end = sums + 16 * pairs;
        int32_t s00, s01, s10, s11, t0, t1;
        register int32_t xa __asm__("r0"), xb __asm__("r1"), xc __asm__("r2"),
            xd __asm__("r3");
        __asm__ volatile(
            "0:\n\t"
            "ldr %[t0], %[sp]\n\t"
            "ldrd %[s00], %[s01], [%[t0]]\n\t"
            "ldrd %[s10], %[s11], [%[t0], #8]\n\t"
            "ldr %[t1], %[n]\n\t"
            "tst %[t1], #8\n\t" /* 16 values per iteration; an odd 8 enters halfway */
            "bne 2f\n\t"
            "1:\n\t" TE_ASM_STEP_2X2_Q15 TE_ASM_STEP_2X2_Q15
            "2:\n\t" TE_ASM_STEP_2X2_Q15 TE_ASM_STEP_2X2_Q15
            "cmp %[q], %[end]\n\t"
            "bne 1b\n\t"
            "ldr %[t1], %[n]\n\t"
            "sub %[q], %[q], %[t1], lsl #2\n\t" /* back to the pair's first lanes */
            "sub %[w], %[w], %[t1]\n\t"
            "add %[w], %[w], %[st], lsl #1\n\t" /* the next channel pair's rows */
            "ldr %[t0], %[sp]\n\t"
            "strd %[s00], %[s01], [%[t0]], #8\n\t"
            "strd %[s10], %[s11], [%[t0]], #8\n\t"
            "str %[t0], %[sp]\n\t"
            "ldr %[t1], %[spend]\n\t"
            "cmp %[t0], %[t1]\n\t"
            "bne 0b\n\t"
            : [q] "+r"(q), [w] "+r"(w), [s00] "=&r"(s00), [s01] "=&r"(s01), [s10] "=&r"(s10),
              [s11] "=&r"(s11), [t0] "=&r"(t0), [t1] "=&r"(t1), [xa] "=&r"(xa), [xb] "=&r"(xb),
              [xc] "=&r"(xc), [xd] "=&r"(xd), [sp] "+m"(sp)
            : [st] "r"(k), [end] "r"(q_end), [n] "m"(n), [spend] "m"(sp_end)
            : "cc", "memory");
        return;
    }
#endif
    for (j = 0; j < pairs; ++j, w += 2 * k) {
        int32_t s[4];
        for (i = 0; i < 4; ++i) {
            s[i] = (int32_t)te_simd_load4(sums + 16 * j + 4 * i);
        }
        te_simd_dot_2x2_q15(q, w, k, n, s);
        for (i = 0; i < 4; ++i) {
            te_simd_store4(sums + 16 * j + 4 * i, (uint32_t)s[i]);
        }
    }
}

/** Bytes of te_conv2d_im2col_rows_simd's work space: a kernel row of the pair widened, the
 * pair's int32 sums (four per channel pair, an odd last channel's included), and up to 3 bytes
 * of alignment. */
static int32_t te_conv2d_im2col_rows_bytes(const te_conv2d_params_t *p)
{
    return 4 * p->filter.w * p->filter.c + 16 * ((p->output.c + 1) >> 1) + 3;
}

/** The layers te_conv2d_im2col_simd takes: one group, a short kernel row or enough output
 * channels, a zero point that int8 holds (the padding value), a pixel pair. */
static int te_conv2d_im2col_layer(const te_conv2d_params_t *p)
{
    return p->groups == 1 &&
           (p->filter.w * p->filter.c <= TE_CONV_IM2COL_MAX_ROW ||
            p->output.c >= TE_CONV_IM2COL_MIN_OC) &&
           p->output.c >= 2 && p->q.input_offset >= -127 && p->q.input_offset <= 128 &&
           p->output.n * p->output.h * p->output.w >= 2;
}

/** The domain of te_conv2d_im2col_simd: such a layer, and an output (with `room` bytes after
 * it) that holds one pixel pair besides the work space (the smaller one of
 * te_conv2d_im2col_rows_simd where that runs). The requantisation domain
 * (te_simd_rq_ok) is the caller's check. */
static int te_conv2d_im2col_ok(const te_conv2d_params_t *p, int32_t room)
{
    const int32_t n_px = p->output.n * p->output.h * p->output.w;
    const int32_t need = te_conv2d_im2col_bytes(p);
    const int32_t rows = te_conv2d_im2col_rows_bytes(p);
    const int32_t least = (p->input.c & 3) == 0 && p->filter.h > 1 && rows < need ? rows : need;
    return te_conv2d_im2col_layer(p) && (n_px - 2) * p->output.c + room >= least;
}

/** n bytes from src to dst: one word move for the common 4, no call for short runs. */
TE_SIMD_INLINE void te_conv_copy(int8_t *dst, const int8_t *src, int32_t n)
{
    if (n == 4) {
        te_simd_store4(dst, te_simd_load4(src));
    } else {
        for (; n > 0; --n) {
            *dst++ = *src++;
        }
    }
}

/** n bytes of v at dst (the padding of a row: a few bytes, often none). */
TE_SIMD_INLINE void te_conv_fill(int8_t *dst, int v, int32_t n)
{
    for (; n > 0; --n) {
        *dst++ = (int8_t)v;
    }
}

/** Output pixel px's patch (NHW order of pixels; kernel rows in order, fw * c values each),
 * taps outside the image as the input zero point, into col. One group. */
static void te_conv_im2col_column(const te_conv2d_params_t *p, const int8_t *input, int32_t px,
                                  int8_t *col)
{
    const int32_t c = p->input.c, fw = p->filter.w, row = fw * c, dw = p->dilation_w;
    const int32_t ox = px % p->output.w, t = px / p->output.w;
    const int32_t oy = t % p->output.h, b = t / p->output.h;
    const int32_t in_y0 = oy * p->stride_h - p->pad_h, in_x0 = ox * p->stride_w - p->pad_w;
    const int pad = -p->q.input_offset;
    int32_t kx0, kx1, ky, kx;
    te_conv_valid_taps(in_x0, dw, p->input.w, fw, &kx0, &kx1);
    for (ky = 0; ky < p->filter.h; ++ky, col += row) {
        const int32_t in_y = in_y0 + ky * p->dilation_h;
        int32_t base; /* index of tap kx = 0 in the input; negative left of the image */
        if (in_y < 0 || in_y >= p->input.h || kx0 == kx1) {
            te_conv_fill(col, pad, row);
            continue;
        }
        base = ((b * p->input.h + in_y) * p->input.w + in_x0) * c;
        if (dw == 1) {
            te_conv_fill(col, pad, kx0 * c);
            te_conv_copy(col + kx0 * c, input + (base + kx0 * c), (kx1 - kx0) * c);
            te_conv_fill(col + kx1 * c, pad, (fw - kx1) * c);
        } else {
            for (kx = 0; kx < fw; ++kx) {
                if (kx < kx0 || kx >= kx1) {
                    te_conv_fill(col + kx * c, pad, c);
                } else {
                    te_conv_copy(col + kx * c, input + (base + kx * dw * c), c);
                }
            }
        }
    }
}

/** n4 groups of 4 values of two pixels, a and b (each stepping by ia, ib bytes: 4 for input, 0
 * for a word of padding bytes), plus the offset, as te_simd_widen2 lays them out; returns the
 * end of what was written. */
TE_SIMD_INLINE int8_t *te_conv_widen_run(int8_t *q, const int8_t *a, int32_t ia, const int8_t *b,
                                         int32_t ib, int32_t n4, int32_t off2)
{
    for (; n4 > 0; --n4) {
        const uint32_t u = te_simd_load4(a), v = te_simd_load4(b);
        a += ia;
        b += ib;
        te_simd_store4(q, (uint32_t)te_sxtab16(off2, u));
        te_simd_store4(q + 4, (uint32_t)te_sxtab16_r8(off2, u));
        te_simd_store4(q + 8, (uint32_t)te_sxtab16(off2, v));
        te_simd_store4(q + 12, (uint32_t)te_sxtab16_r8(off2, v));
        q += 16;
    }
    return q;
}

/** Where output pixel px's window starts: its first input row and column (may be outside). */
typedef struct {
    int32_t y0, x0;     /* the window's top-left tap in the input */
    int32_t kx0, kx1;   /* its valid column taps */
    const int8_t *img;  /* its batch's image */
} te_conv_win_t;

TE_SIMD_INLINE te_conv_win_t te_conv_win(const te_conv2d_params_t *p, const int8_t *input,
                                         int32_t px)
{
    const int32_t ox = px % p->output.w, t = px / p->output.w;
    te_conv_win_t w;
    w.y0 = (t % p->output.h) * p->stride_h - p->pad_h;
    w.x0 = ox * p->stride_w - p->pad_w;
    w.img = input + (t / p->output.h) * p->input.h * p->input.w * p->input.c;
    te_conv_valid_taps(w.x0, p->dilation_w, p->input.w, p->filter.w, &w.kx0, &w.kx1);
    return w;
}

/** Input channels a multiple of 4: kernel rows ky0 .. ky1 - 1 of the patches of pixels px and
 * px + 1 go straight from the input into their widened lanes (the layout of te_simd_widen2 over
 * that part of their im2col columns), a
 * kernel row at a time where both rows lie inside the image and taps are adjacent, else a tap at
 * a time, padding taps from a word of padding bytes (which widen to 0). 4 bytes per value. */
static void te_conv_im2col_q15(const te_conv2d_params_t *p, const int8_t *input, int32_t px,
                               int32_t ky0, int32_t ky1, int8_t *q, int32_t off2)
{
    const int32_t c = p->input.c, fw = p->filter.w, dw = p->dilation_w;
    const te_conv_win_t wa = te_conv_win(p, input, px), wb = te_conv_win(p, input, px + 1);
    const uint32_t padw = te_simd_dup8(-p->q.input_offset);
    const int8_t *const pad = (const int8_t *)&padw;
    int32_t ky, kx;
    for (ky = ky0; ky < ky1; ++ky) {
        const int32_t ya = wa.y0 + ky * p->dilation_h, yb = wb.y0 + ky * p->dilation_h;
        const int in_a = ya >= 0 && ya < p->input.h, in_b = yb >= 0 && yb < p->input.h;
        /* Index of tap kx = 0 in the image (outside it where the tap is). */
        const int32_t ra = (ya * p->input.w + wa.x0) * c, rb = (yb * p->input.w + wb.x0) * c;
        if (dw == 1 && in_a && in_b && wa.kx0 == 0 && wa.kx1 == fw && wb.kx0 == 0 &&
            wb.kx1 == fw) {
            q = te_conv_widen_run(q, wa.img + ra, 4, wb.img + rb, 4, (fw * c) >> 2, off2);
            continue;
        }
        for (kx = 0; kx < fw; ++kx) {
            const int va = in_a && kx >= wa.kx0 && kx < wa.kx1;
            const int vb = in_b && kx >= wb.kx0 && kx < wb.kx1;
            q = te_conv_widen_run(q, va ? wa.img + (ra + kx * dw * c) : pad, va ? 4 : 0,
                                  vb ? wb.img + (rb + kx * dw * c) : pad, vb ? 4 : 0, c >> 2,
                                  off2);
        }
    }
}

/**
 * Once the whole widened pair no longer fits beside the outputs still to write: pixel pairs
 * px, px + 2, ... a kernel row at a time, each row widened (te_conv_im2col_q15) and run across
 * every output channel pair into int32 sums kept in the work space, which then are requantised
 * and stored. The work space is about 4 * fw * c + 8 * oc bytes instead of 4 * k, so fewer of the
 * last pixels are left to te_conv2d_simd (resnet's 8x8x64 layer: 21 of 64 instead of 37).
 * Input channels a multiple of 4. Returns the pixels done, px included.
 */
static int32_t te_conv2d_im2col_rows_simd(const te_conv2d_params_t *p, const int8_t *input,
                                          const int8_t *filter, const int32_t *bias,
                                          int8_t *output, int32_t room, int32_t px)
{
    const int32_t row = p->filter.w * p->filter.c, k = p->filter.h * row, oc_n = p->output.c;
    const int32_t n_px = p->output.n * p->output.h * p->output.w;
    int8_t *const end = output + n_px * oc_n + room;
    const int32_t sum_bytes = 16 * ((oc_n + 1) >> 1); /* four per channel pair */
    int8_t *const sums = end - sum_bytes - (int32_t)((uintptr_t)(end - sum_bytes) & 3);
    int8_t *const q = sums - 4 * row;
    const int32_t off2 = te_simd_dup16(p->q.input_offset);
    const te_simd_act_t a = te_simd_act(&p->q);
    const int full = te_simd_act_full(&p->q);
    int32_t oc, ky, j;
    if (p->filter.h < 2) {
        return px; /* a single kernel row: the whole pair did not fit either */
    }
    for (; px + 2 <= n_px && output + (px + 2) * oc_n <= q; px += 2) {
        int8_t *const dst = output + px * oc_n;
        te_conv_rq_iter_t r = te_conv_rq_iter(p);
        for (oc = 0; oc < oc_n; ++oc) { /* (b0, b1, b0, b1) per channel pair */
            const uint32_t b = bias != NULL ? (uint32_t)bias[oc] : 0;
            te_simd_store4(sums + 8 * (oc & ~1) + 4 * (oc & 1), b);
            te_simd_store4(sums + 8 * (oc & ~1) + 4 * (oc & 1) + 8, b);
        }
        for (ky = 0; ky < p->filter.h; ++ky) {
            te_conv_im2col_q15(p, input, px, ky, ky + 1, q, off2);
            te_conv_q15_acc(q, filter + ky * row, k, row, sums, oc_n >> 1);
            if (oc_n & 1) { /* the last channel, its row twice */
                int32_t s[4];
                int8_t *const sp = sums + 8 * (oc_n - 1);
                for (j = 0; j < 4; ++j) {
                    s[j] = j & 1 ? 0 : (int32_t)te_simd_load4(sp + 4 * j);
                }
                te_simd_dot_2x2_q15(q, filter + (oc_n - 1) * k + ky * row, 0, row, s);
                te_simd_store4(sp, (uint32_t)s[0]);
                te_simd_store4(sp + 8, (uint32_t)s[2]);
            }
        }
        for (oc = 0; oc < oc_n; oc += 2) {
            int32_t s[4];
            for (j = 0; j < 4; ++j) {
                s[j] = (int32_t)te_simd_load4(sums + 8 * oc + 4 * j);
            }
            if (oc + 1 < oc_n) {
                te_simd_store_2x2(dst + oc, oc_n, s, te_conv_rq_at(&r, 0), te_conv_rq_at(&r, 1),
                                  full, &a);
            } else {
                dst[oc] = te_simd_out1(s[0], te_conv_rq_at(&r, 0), a.lo, a.hi);
                dst[oc_n + oc] = te_simd_out1(s[2], te_conv_rq_at(&r, 0), a.lo, a.hi);
            }
            r.mult += 2 * r.step;
            r.shift += 2 * r.step;
        }
    }
    return px;
}

/**
 * Output pixels 0 .. (returned) - 1, in pairs, by im2col and the widened 2x2 product; the
 * caller computes the rest. The work space ends `room` bytes after the output. Domain:
 * te_conv2d_im2col_ok and te_simd_rq_ok. `direct`: whether the input channels are a multiple of
 * 4 (each caller passes a constant, so that its path links only the gathering it uses).
 */
TE_SIMD_INLINE int32_t te_conv2d_im2col_simd(const te_conv2d_params_t *p, const int8_t *input,
                                             const int8_t *filter, const int32_t *bias,
                                             int8_t *output, int32_t room, int direct)
{
    const int32_t k = p->filter.h * p->filter.w * p->filter.c, oc_n = p->output.c;
    const int32_t n_px = p->output.n * p->output.h * p->output.w;
    int8_t *const end = output + n_px * oc_n + room;
    /* The work space at the output's end: the widened pair word-aligned (the assembly's LDM). */
    int8_t *const q = end - 4 * k - (int32_t)((uintptr_t)(end - 4 * k) & 3);
    /* Input channels a multiple of 4 widen straight from the input (te_conv_im2col_q15). */
    int8_t *const cols = direct ? q : q - 2 * k;
    const int32_t off2 = te_simd_dup16(p->q.input_offset);
    const te_simd_act_t a = te_simd_act(&p->q);
    const int fast = (k & 7) == 0 && te_simd_act_full(&p->q);
    te_conv2d_params_t pk = *p; /* the product's view: a pointwise layer over k channels */
    int32_t px;
    pk.input.c = k;
    for (px = 0; px + 2 <= n_px && output + (px + 2) * oc_n <= cols; px += 2) {
        if (direct) {
            te_conv_im2col_q15(p, input, px, 0, p->filter.h, q, off2);
        } else {
            te_conv_im2col_column(p, input, px, cols);
            te_conv_im2col_column(p, input, px + 1, cols + k);
            te_simd_widen2(q, cols, cols + k, k, off2);
        }
        if (fast) {
            te_conv2d_1x1_q15_x8(&pk, q, filter, bias, output + px * oc_n, oc_n, &a);
        } else {
            te_conv2d_1x1_q15_any(&pk, q, filter, bias, output + px * oc_n, oc_n, &a);
        }
    }
    return direct ? te_conv2d_im2col_rows_simd(p, input, filter, bias, output, room, px) : px;
}

/** te_conv2d_im2col_simd on input channels that are not a multiple of 4: im2col columns. */
static int32_t te_conv2d_im2col_cols_simd(const te_conv2d_params_t *p, const int8_t *input,
                                          const int8_t *filter, const int32_t *bias,
                                          int8_t *output, int32_t room)
{
    return te_conv2d_im2col_simd(p, input, filter, bias, output, room, 0);
}

/** te_conv2d_im2col_simd on input channels that are a multiple of 4: widened straight from the
 * input, then a kernel row at a time. */
static int32_t te_conv2d_im2col_q15_simd(const te_conv2d_params_t *p, const int8_t *input,
                                         const int8_t *filter, const int32_t *bias,
                                         int8_t *output, int32_t room)
{
    return te_conv2d_im2col_simd(p, input, filter, bias, output, room, 1);
}
#endif /* TE_SIMD */

/** Output (b, oy, ox, oc) of any convolution, by TFLite's reference loop: the portable kernel,
 * and the recomputation of the channels outside the SIMD requantisation's domain. */
static int8_t te_conv2d_value(const te_conv2d_params_t *p, const int8_t *input,
                              const int8_t *filter, const int32_t *bias, int32_t b, int32_t oy,
                              int32_t ox, int32_t oc)
{
    const int32_t in_y0 = oy * p->stride_h - p->pad_h, in_x0 = ox * p->stride_w - p->pad_w;
    /* The group's first input channel. */
    const int32_t ic0 = (oc / (p->output.c / p->groups)) * p->filter.c;
    int32_t ky, kx, ic, acc = 0;
    for (ky = 0; ky < p->filter.h; ++ky) {
        const int32_t in_y = in_y0 + ky * p->dilation_h;
        if (in_y < 0 || in_y >= p->input.h) {
            continue;
        }
        for (kx = 0; kx < p->filter.w; ++kx) {
            const int32_t in_x = in_x0 + kx * p->dilation_w;
            const int8_t *in_px;
            const int8_t *f_px;
            if (in_x < 0 || in_x >= p->input.w) {
                continue;
            }
            in_px = input + ((b * p->input.h + in_y) * p->input.w + in_x) * p->input.c + ic0;
            f_px = filter + ((oc * p->filter.h + ky) * p->filter.w + kx) * p->filter.c;
            for (ic = 0; ic < p->filter.c; ++ic) {
                acc += ((int32_t)in_px[ic] + p->q.input_offset) * (int32_t)f_px[ic];
            }
        }
    }
    if (bias != NULL) {
        acc += bias[oc];
    }
    acc = te_requantize(&p->rq, oc, acc) + p->q.output_offset;
    return (int8_t)te_clamp(acc, p->q.act_min, p->q.act_max);
}

int32_t te_conv2d_room_bytes(const te_conv2d_params_t *p)
{
#if TE_SIMD
    if (p != NULL && te_conv2d_im2col_layer(p)) {
        return te_conv2d_im2col_bytes(p);
    }
#else
    (void)p;
#endif
    return 0;
}

static int te_conv2d_is_pointwise(const te_conv2d_params_t *p)
{
    return p->groups == 1 && p->filter.h == 1 && p->filter.w == 1 && p->stride_h == 1 &&
           p->stride_w == 1 && p->pad_h == 0 && p->pad_w == 0 && p->input.h == p->output.h &&
           p->input.w == p->output.w;
}

/* One output pixel of a pointwise convolution: out[oc] for oc < output.c. */
static void te_conv2d_1x1_pixel(const te_conv2d_params_t *p, const int8_t *in_px,
                                const int8_t *filter, const int32_t *bias, int8_t *out)
{
    int32_t oc, ic;
    for (oc = 0; oc < p->output.c; ++oc) {
        const int8_t *f_row = filter + oc * p->filter.c;
        int32_t acc = 0;
        for (ic = 0; ic < p->input.c; ++ic) {
            acc += ((int32_t)in_px[ic] + p->q.input_offset) * (int32_t)f_row[ic];
        }
        if (bias != NULL) {
            acc += bias[oc];
        }
        acc = te_requantize(&p->rq, oc, acc) + p->q.output_offset;
        out[oc] = (int8_t)te_clamp(acc, p->q.act_min, p->q.act_max);
    }
}

/* Conv2D.scratch_bytes in tinyengine/ops/conv.py plans the same. The portable path computes
 * one output pixel into the scratch; the SIMD path widens two input pixels to int16 there
 * (te_simd_widen2), 4 bytes per input channel. One size for both keeps the plan one. */
int32_t te_conv2d_1x1_inplace_get_buffer_size(const te_conv2d_params_t *p)
{
    const int32_t widened = 4 * p->input.c;
    return p->output.c > widened ? p->output.c : widened;
}

/** The argument checks of te_conv2d_1x1_inplace_s8 and its paths. */
static inline te_status_t te_conv2d_1x1_inplace_check(const te_conv2d_params_t *p,
                                                      const int8_t *input, const int8_t *filter,
                                                      const int8_t *output,
                                                      const int8_t *scratch)
{
    const te_status_t st = te_conv2d_check(p, input, filter, output);
    if (st != TE_OK) {
        return st;
    }
    if (!te_conv2d_is_pointwise(p)) {
        return TE_ERR_ARG;
    }
    return scratch == NULL ? TE_ERR_SCRATCH : TE_OK;
}

/* ---- the portable loops (every build) ------------------------------------------------------ */

te_status_t te_conv2d_portable_s8(const te_conv2d_params_t *p, const int8_t *input,
                                  const int8_t *filter, const int32_t *bias, int8_t *output)
{
    int32_t b, oy, ox, oc;
    const te_status_t st = te_conv2d_check(p, input, filter, output);
    if (st != TE_OK) {
        return st;
    }
    for (b = 0; b < p->output.n; ++b) {
        for (oy = 0; oy < p->output.h; ++oy) {
            for (ox = 0; ox < p->output.w; ++ox) {
                for (oc = 0; oc < p->output.c; ++oc) {
                    output[((b * p->output.h + oy) * p->output.w + ox) * p->output.c + oc] =
                        te_conv2d_value(p, input, filter, bias, b, oy, ox, oc);
                }
            }
        }
    }
    return TE_OK;
}

te_status_t te_conv2d_1x1_portable_s8(const te_conv2d_params_t *p, const int8_t *input,
                                      const int8_t *filter, const int32_t *bias, int8_t *output)
{
    int32_t px, n_px;
    const te_status_t st = te_conv2d_check(p, input, filter, output);
    if (st != TE_OK) {
        return st;
    }
    if (!te_conv2d_is_pointwise(p)) {
        return TE_ERR_ARG;
    }
    /* Outside padding and strides a pointwise convolution is a matrix product over pixels. */
    n_px = p->output.n * p->output.h * p->output.w;
    for (px = 0; px < n_px; ++px) {
        te_conv2d_1x1_pixel(p, input + px * p->input.c, filter, bias, output + px * p->output.c);
    }
    return TE_OK;
}

te_status_t te_conv2d_1x1_inplace_portable_s8(const te_conv2d_params_t *p, const int8_t *input,
                                              const int8_t *filter, const int32_t *bias,
                                              int8_t *output, int8_t *scratch)
{
    int32_t i, c, n_px;
    const te_status_t st = te_conv2d_1x1_inplace_check(p, input, filter, output, scratch);
    if (st != TE_OK) {
        return st;
    }
    n_px = p->output.n * p->output.h * p->output.w;
    for (i = 0; i < n_px; ++i) {
        const int32_t px = p->output.c <= p->input.c ? i : n_px - 1 - i;
        te_conv2d_1x1_pixel(p, input + px * p->input.c, filter, bias, scratch);
        for (c = 0; c < p->output.c; ++c) {
            output[px * p->output.c + c] = scratch[c];
        }
    }
    return TE_OK;
}

/* ---- the SIMD paths ------------------------------------------------------------------------
 *
 * Each path is one call of te_conv2d_generic_run, te_conv2d_1x1_run (constant arguments pick
 * the static functions it links) or te_conv2d_1x1_inplace_simd, made by its own entry point and
 * by the variant's dispatcher alike: one implementation per path. The entry points check their
 * arguments, their path's geometry and the requantisation domain it needs, and refuse anything
 * else with TE_ERR_ARG: a path called outside its domain would be a silent wrong answer. In a
 * build without SIMD each is its variant's portable loop. The code generator calls the entry
 * points (issue 16: a model links the paths it takes); te_conv2d_rows_inplace_s8's bands call
 * the dispatchers, whose im2col choice depends on each band's room.
 */

#if TE_SIMD
/** After a SIMD pass over a layer only partly inside the fast requantisation's domain: the
 * channels outside it again, exactly (out-of-place kernels only: the input is intact). */
static void te_conv2d_fix_channels(const te_conv2d_params_t *p, const int8_t *input,
                                   const int8_t *filter, const int32_t *bias, int8_t *output,
                                   int32_t products)
{
    int32_t oc, b, oy, ox;
    for (oc = 0; oc < p->output.c; ++oc) {
        if (te_simd_rq_channel_ok(&p->rq, bias, oc, products, TE_CONV_MAX_TERM)) {
            continue;
        }
        for (b = 0; b < p->output.n; ++b) {
            for (oy = 0; oy < p->output.h; ++oy) {
                for (ox = 0; ox < p->output.w; ++ox) {
                    output[((b * p->output.h + oy) * p->output.w + ox) * p->output.c + oc] =
                        te_conv2d_value(p, input, filter, bias, b, oy, ox, oc);
                }
            }
        }
    }
}

/* How the generic paths gather their first pixel pairs (te_conv2d_generic_run). */
#define TE_CONV_GATHER_NONE 0    /* direct: te_conv2d_simd over every pixel */
#define TE_CONV_GATHER_COLUMNS 1 /* im2col: te_conv2d_im2col_cols_simd */
#define TE_CONV_GATHER_Q15 2     /* im2col_q15: te_conv2d_im2col_q15_simd */

/** The generic kernel's SIMD paths, out of place: the pixel pairs `gather` takes (none on the
 * direct path), the pixels it leaves by te_conv2d_simd, and with `partial` the channels outside
 * the fast requantisation's domain again. Each caller passes constants. */
TE_SIMD_INLINE void te_conv2d_generic_run(const te_conv2d_params_t *p, const int8_t *input,
                                          const int8_t *filter, const int32_t *bias,
                                          int8_t *output, int32_t room, int gather, int partial)
{
    const int32_t n_px = p->output.n * p->output.h * p->output.w;
    const int32_t done =
        gather == TE_CONV_GATHER_COLUMNS
            ? te_conv2d_im2col_cols_simd(p, input, filter, bias, output, room)
        : gather == TE_CONV_GATHER_Q15
            ? te_conv2d_im2col_q15_simd(p, input, filter, bias, output, room)
            : 0;
    te_conv2d_simd(p, input, filter, bias, output, done, n_px);
    if (partial) {
        te_conv2d_fix_channels(p, input, filter, bias, output,
                               p->filter.h * p->filter.w * p->filter.c);
    }
}

/** The pointwise kernel's SIMD paths: with `widen` the pixel pairs te_conv2d_1x1_widened_simd
 * takes, then the others by channel pairs; with `partial` the channels outside the fast
 * requantisation's domain again. Each caller passes constants. */
TE_SIMD_INLINE void te_conv2d_1x1_run(const te_conv2d_params_t *p, const int8_t *input,
                                      const int8_t *filter, const int32_t *bias, int8_t *output,
                                      int widen, int partial)
{
    const int32_t n = p->output.n * p->output.h * p->output.w;
    const int32_t done = widen ? te_conv2d_1x1_widened_simd(p, input, filter, bias, output) : 0;
    te_conv2d_1x1_simd(p, input + done * p->input.c, filter, bias, output + done * p->output.c,
                       n - done);
    if (partial) {
        te_conv2d_fix_channels(p, input, filter, bias, output, p->input.c);
    }
}

/** The generic kernel's path with `room` free bytes after the output (te_conv2d_room_s8): the
 * requantisation domain first (every channel inside it: the SIMD path; some: its partial form;
 * none: the portable loop), then im2col where te_conv2d_im2col_ok holds (straight from the
 * input, im2col_q15, when the input channels are a multiple of 4), else direct. */
static te_conv2d_path_t te_conv2d_generic_path(const te_conv2d_params_t *p,
                                               const int32_t *bias, int32_t room)
{
    const int32_t products = p->filter.h * p->filter.w * p->filter.c;
    const int all = te_simd_rq_ok(&p->rq, bias, p->output.c, products, TE_CONV_MAX_TERM);
    te_conv2d_path_t path;
    if (!all && !te_simd_rq_any_ok(&p->rq, bias, p->output.c, products, TE_CONV_MAX_TERM)) {
        return TE_CONV_PATH_PORTABLE;
    }
    path = !te_conv2d_im2col_ok(p, room) ? TE_CONV_PATH_DIRECT
           : (p->input.c & 3) == 0       ? TE_CONV_PATH_IM2COL_Q15
                                         : TE_CONV_PATH_IM2COL;
    return all ? path : (te_conv2d_path_t)(path + 1); /* its _partial form */
}

/** The pointwise kernel's path (p pointwise): the requantisation domain as the generic one's,
 * then widened where te_conv2d_1x1_widens holds, else channel pairs. */
static te_conv2d_path_t te_conv2d_1x1_path(const te_conv2d_params_t *p, const int32_t *bias)
{
    const int all = te_simd_rq_ok(&p->rq, bias, p->output.c, p->input.c, TE_CONV_MAX_TERM);
    te_conv2d_path_t path;
    if (!all && !te_simd_rq_any_ok(&p->rq, bias, p->output.c, p->input.c, TE_CONV_MAX_TERM)) {
        return TE_CONV_PATH_1X1_PORTABLE;
    }
    path = te_conv2d_1x1_widens(p) ? TE_CONV_PATH_1X1_WIDENED : TE_CONV_PATH_1X1_PAIRS;
    return all ? path : (te_conv2d_path_t)(path + 1);
}

/** The in-place pointwise kernel's path: q15 with every channel inside the domain (no partial
 * form: the input is gone when the channels would be recomputed), else the portable loop. */
static te_conv2d_path_t te_conv2d_1x1_inplace_path(const te_conv2d_params_t *p,
                                                   const int32_t *bias)
{
    return te_simd_rq_ok(&p->rq, bias, p->output.c, p->input.c, TE_CONV_MAX_TERM)
               ? TE_CONV_PATH_1X1_INPLACE_Q15
               : TE_CONV_PATH_1X1_INPLACE_PORTABLE;
}

/* te_conv2d_NAME_s8 (every channel inside the requantisation's domain, PRODUCTS terms per sum)
 * and te_conv2d_NAME_partial_s8 (at least one; te_conv2d_fix_channels recomputes the others):
 * RUN(partial) on layers whose params p satisfy DOMAIN. */
#define TE_CONV_OUT_PATHS(NAME, DOMAIN, PRODUCTS, RUN, PORTABLE)                                \
    te_status_t te_conv2d_##NAME##_s8(const te_conv2d_params_t *p, const int8_t *input,         \
                                      const int8_t *filter, const int32_t *bias,                \
                                      int8_t *output)                                           \
    {                                                                                           \
        const te_status_t st = te_conv2d_check(p, input, filter, output);                       \
        if (st != TE_OK) {                                                                      \
            return st;                                                                          \
        }                                                                                       \
        if (!(DOMAIN) ||                                                                        \
            !te_simd_rq_ok(&p->rq, bias, p->output.c, (PRODUCTS), TE_CONV_MAX_TERM)) {          \
            return TE_ERR_ARG;                                                                  \
        }                                                                                       \
        RUN(0);                                                                                 \
        return TE_OK;                                                                           \
    }                                                                                           \
    te_status_t te_conv2d_##NAME##_partial_s8(const te_conv2d_params_t *p, const int8_t *input, \
                                              const int8_t *filter, const int32_t *bias,        \
                                              int8_t *output)                                   \
    {                                                                                           \
        const te_status_t st = te_conv2d_check(p, input, filter, output);                       \
        if (st != TE_OK) {                                                                      \
            return st;                                                                          \
        }                                                                                       \
        if (!(DOMAIN) ||                                                                        \
            !te_simd_rq_any_ok(&p->rq, bias, p->output.c, (PRODUCTS), TE_CONV_MAX_TERM)) {      \
            return TE_ERR_ARG;                                                                  \
        }                                                                                       \
        RUN(1);                                                                                 \
        return TE_OK;                                                                           \
    }

te_status_t te_conv2d_1x1_inplace_q15_s8(const te_conv2d_params_t *p, const int8_t *input,
                                         const int8_t *filter, const int32_t *bias,
                                         int8_t *output, int8_t *scratch)
{
    const te_status_t st = te_conv2d_1x1_inplace_check(p, input, filter, output, scratch);
    if (st != TE_OK) {
        return st;
    }
    if (!te_simd_rq_ok(&p->rq, bias, p->output.c, p->input.c, TE_CONV_MAX_TERM)) {
        return TE_ERR_ARG;
    }
    te_conv2d_1x1_inplace_simd(p, input, filter, bias, output, scratch);
    return TE_OK;
}

#elif defined(__GNUC__) && defined(__ELF__)
/* Without SIMD every path name is its variant's portable loop: another name for the same code
 * (an ELF alias), which costs no byte and no call. */
#define TE_CONV_OUT_PATHS(NAME, DOMAIN, PRODUCTS, RUN, PORTABLE)                                \
    te_status_t te_conv2d_##NAME##_s8(const te_conv2d_params_t *p, const int8_t *input,         \
                                      const int8_t *filter, const int32_t *bias,                \
                                      int8_t *output) __attribute__((alias(#PORTABLE)));        \
    te_status_t te_conv2d_##NAME##_partial_s8(const te_conv2d_params_t *p, const int8_t *input, \
                                              const int8_t *filter, const int32_t *bias,        \
                                              int8_t *output) __attribute__((alias(#PORTABLE)));
te_status_t te_conv2d_1x1_inplace_q15_s8(const te_conv2d_params_t *p, const int8_t *input,
                                         const int8_t *filter, const int32_t *bias,
                                         int8_t *output, int8_t *scratch)
    __attribute__((alias("te_conv2d_1x1_inplace_portable_s8")));
#else
/* Elsewhere (no ELF aliases): a call of the portable loop. */
#define TE_CONV_OUT_PATHS(NAME, DOMAIN, PRODUCTS, RUN, PORTABLE)                                \
    te_status_t te_conv2d_##NAME##_s8(const te_conv2d_params_t *p, const int8_t *input,         \
                                      const int8_t *filter, const int32_t *bias,                \
                                      int8_t *output)                                           \
    {                                                                                           \
        return PORTABLE(p, input, filter, bias, output);                                        \
    }                                                                                           \
    te_status_t te_conv2d_##NAME##_partial_s8(const te_conv2d_params_t *p, const int8_t *input, \
                                              const int8_t *filter, const int32_t *bias,        \
                                              int8_t *output)                                   \
    {                                                                                           \
        return PORTABLE(p, input, filter, bias, output);                                        \
    }
te_status_t te_conv2d_1x1_inplace_q15_s8(const te_conv2d_params_t *p, const int8_t *input,
                                         const int8_t *filter, const int32_t *bias,
                                         int8_t *output, int8_t *scratch)
{
    return te_conv2d_1x1_inplace_portable_s8(p, input, filter, bias, output, scratch);
}
#endif

#define TE_CONV_PRODUCTS (p->filter.h * p->filter.w * p->filter.c)
#define TE_CONV_RUN_DIRECT(partial)                                                             \
    te_conv2d_generic_run(p, input, filter, bias, output, 0, TE_CONV_GATHER_NONE, (partial))
#define TE_CONV_RUN_IM2COL(partial)                                                             \
    te_conv2d_generic_run(p, input, filter, bias, output, 0, TE_CONV_GATHER_COLUMNS, (partial))
#define TE_CONV_RUN_IM2COL_Q15(partial)                                                         \
    te_conv2d_generic_run(p, input, filter, bias, output, 0, TE_CONV_GATHER_Q15, (partial))
#define TE_CONV_RUN_1X1_PAIRS(partial)                                                          \
    te_conv2d_1x1_run(p, input, filter, bias, output, 0, (partial))
#define TE_CONV_RUN_1X1_WIDENED(partial)                                                        \
    te_conv2d_1x1_run(p, input, filter, bias, output, 1, (partial))

TE_CONV_OUT_PATHS(direct, 1, TE_CONV_PRODUCTS, TE_CONV_RUN_DIRECT, te_conv2d_portable_s8)
TE_CONV_OUT_PATHS(im2col, te_conv2d_im2col_ok(p, 0) && (p->input.c & 3) != 0, TE_CONV_PRODUCTS,
                  TE_CONV_RUN_IM2COL, te_conv2d_portable_s8)
TE_CONV_OUT_PATHS(im2col_q15, te_conv2d_im2col_ok(p, 0) && (p->input.c & 3) == 0,
                  TE_CONV_PRODUCTS, TE_CONV_RUN_IM2COL_Q15, te_conv2d_portable_s8)
TE_CONV_OUT_PATHS(1x1_pairs, te_conv2d_is_pointwise(p), p->input.c, TE_CONV_RUN_1X1_PAIRS,
                  te_conv2d_1x1_portable_s8)
TE_CONV_OUT_PATHS(1x1_widened, te_conv2d_is_pointwise(p) && te_conv2d_1x1_widens(p),
                  p->input.c, TE_CONV_RUN_1X1_WIDENED, te_conv2d_1x1_portable_s8)

#undef TE_CONV_OUT_PATHS
#undef TE_CONV_PRODUCTS
#undef TE_CONV_RUN_DIRECT
#undef TE_CONV_RUN_IM2COL
#undef TE_CONV_RUN_IM2COL_Q15
#undef TE_CONV_RUN_1X1_PAIRS
#undef TE_CONV_RUN_1X1_WIDENED

/* ---- the dispatchers: the path by the rule the code generator applies ---------------------- */

te_conv2d_path_t te_conv2d_path_s8(const te_conv2d_params_t *p, const int32_t *bias,
                                   te_conv2d_variant_t variant)
{
#if TE_SIMD
    switch (variant) {
    case TE_CONV2D_1X1_INPLACE:
        return te_conv2d_1x1_inplace_path(p, bias);
    case TE_CONV2D_1X1:
        return te_conv2d_1x1_path(p, bias);
    default:
        return te_conv2d_generic_path(p, bias, 0);
    }
#else
    (void)p;
    (void)bias;
    return variant == TE_CONV2D_1X1_INPLACE ? TE_CONV_PATH_1X1_INPLACE_PORTABLE
           : variant == TE_CONV2D_1X1       ? TE_CONV_PATH_1X1_PORTABLE
                                            : TE_CONV_PATH_PORTABLE;
#endif
}

te_status_t te_conv2d_s8(const te_conv2d_params_t *p, const int8_t *input, const int8_t *filter,
                         const int32_t *bias, int8_t *output)
{
    return te_conv2d_room_s8(p, input, filter, bias, output, 0);
}

te_status_t te_conv2d_room_s8(const te_conv2d_params_t *p, const int8_t *input,
                              const int8_t *filter, const int32_t *bias, int8_t *output,
                              int32_t room)
{
    if (room < 0) {
        return TE_ERR_ARG;
    }
#if TE_SIMD
    {
        const te_status_t st = te_conv2d_check(p, input, filter, output);
        if (st != TE_OK) {
            return st;
        }
    }
    switch (te_conv2d_generic_path(p, bias, room)) {
    case TE_CONV_PATH_DIRECT:
        te_conv2d_generic_run(p, input, filter, bias, output, room, TE_CONV_GATHER_NONE, 0);
        return TE_OK;
    case TE_CONV_PATH_DIRECT_PARTIAL:
        te_conv2d_generic_run(p, input, filter, bias, output, room, TE_CONV_GATHER_NONE, 1);
        return TE_OK;
    case TE_CONV_PATH_IM2COL:
        te_conv2d_generic_run(p, input, filter, bias, output, room, TE_CONV_GATHER_COLUMNS, 0);
        return TE_OK;
    case TE_CONV_PATH_IM2COL_PARTIAL:
        te_conv2d_generic_run(p, input, filter, bias, output, room, TE_CONV_GATHER_COLUMNS, 1);
        return TE_OK;
    case TE_CONV_PATH_IM2COL_Q15:
        te_conv2d_generic_run(p, input, filter, bias, output, room, TE_CONV_GATHER_Q15, 0);
        return TE_OK;
    case TE_CONV_PATH_IM2COL_Q15_PARTIAL:
        te_conv2d_generic_run(p, input, filter, bias, output, room, TE_CONV_GATHER_Q15, 1);
        return TE_OK;
    default:
        break;
    }
#endif
    return te_conv2d_portable_s8(p, input, filter, bias, output);
}

te_status_t te_conv2d_1x1_inplace_s8(const te_conv2d_params_t *p, const int8_t *input,
                                     const int8_t *filter, const int32_t *bias, int8_t *output,
                                     int8_t *scratch)
{
#if TE_SIMD
    const te_status_t st = te_conv2d_1x1_inplace_check(p, input, filter, output, scratch);
    if (st != TE_OK) {
        return st;
    }
    if (te_conv2d_1x1_inplace_path(p, bias) == TE_CONV_PATH_1X1_INPLACE_Q15) {
        te_conv2d_1x1_inplace_simd(p, input, filter, bias, output, scratch);
        return TE_OK;
    }
#endif
    return te_conv2d_1x1_inplace_portable_s8(p, input, filter, bias, output, scratch);
}

te_status_t te_conv2d_1x1_s8(const te_conv2d_params_t *p, const int8_t *input,
                             const int8_t *filter, const int32_t *bias, int8_t *output)
{
#if TE_SIMD
    const te_status_t st = te_conv2d_check(p, input, filter, output);
    if (st != TE_OK) {
        return st;
    }
    if (!te_conv2d_is_pointwise(p)) {
        return TE_ERR_ARG;
    }
    switch (te_conv2d_1x1_path(p, bias)) {
    case TE_CONV_PATH_1X1_PAIRS:
        te_conv2d_1x1_run(p, input, filter, bias, output, 0, 0);
        return TE_OK;
    case TE_CONV_PATH_1X1_PAIRS_PARTIAL:
        te_conv2d_1x1_run(p, input, filter, bias, output, 0, 1);
        return TE_OK;
    case TE_CONV_PATH_1X1_WIDENED:
        te_conv2d_1x1_run(p, input, filter, bias, output, 1, 0);
        return TE_OK;
    case TE_CONV_PATH_1X1_WIDENED_PARTIAL:
        te_conv2d_1x1_run(p, input, filter, bias, output, 1, 1);
        return TE_OK;
    default:
        break;
    }
#endif
    return te_conv2d_1x1_portable_s8(p, input, filter, bias, output);
}

te_conv2d_variant_t te_conv2d_variant(const te_conv2d_params_t *p, int32_t in_place)
{
    if (in_place && te_conv2d_is_pointwise(p)) {
        return TE_CONV2D_1X1_INPLACE;
    }
    return te_conv2d_is_pointwise(p) ? TE_CONV2D_1X1 : TE_CONV2D_GENERIC;
}

int32_t te_conv2d_get_buffer_size_s8(const te_conv2d_params_t *p, int32_t in_place)
{
    if (p == NULL || te_conv2d_variant(p, in_place) != TE_CONV2D_1X1_INPLACE) {
        return 0;
    }
    return te_conv2d_1x1_inplace_get_buffer_size(p);
}

te_status_t te_conv2d_wrapper_s8(const te_conv2d_params_t *p, const int8_t *input,
                                 const int8_t *filter, const int32_t *bias, int8_t *output,
                                 int8_t *scratch)
{
    if (p == NULL) {
        return TE_ERR_ARG;
    }
    switch (te_conv2d_variant(p, (const int8_t *)output == input)) {
    case TE_CONV2D_1X1_INPLACE:
        return te_conv2d_1x1_inplace_s8(p, input, filter, bias, output, scratch);
    case TE_CONV2D_1X1:
        return te_conv2d_1x1_s8(p, input, filter, bias, output);
    default:
        return te_conv2d_s8(p, input, filter, bias, output);
    }
}

/* ---- 16x8: int16 activations, int8 weights ----------------------------------------------- */

static te_status_t te_conv2d_check_s16(const te_conv2d_params_t *p, const int16_t *input,
                                       const int8_t *filter, const int16_t *output, int acc32)
{
    if (p == NULL || input == NULL || filter == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    if (te_conv2d_check(p, (const int8_t *)input, filter, (const int8_t *)output) != TE_OK ||
        p->filter.h < 1 || p->filter.w < 1 || p->filter.c < 1 || p->output.h < 1 ||
        p->output.w < 1 || p->input.h < 1 || p->input.w < 1 || !te_quant_s16_ok(&p->q)) {
        return TE_ERR_ARG;
    }
    if (acc32 ? (p->rq.multiplier == NULL || p->rq.shift == NULL)
              : !te_requant_s64_ok(&p->rq, p->output.c)) {
        return TE_ERR_ARG;
    }
    return TE_OK;
}

/*
 * The 16x8 generic loop, TFLite's ConvPerChannel for int16 input. Each output's sum is exact in
 * int64 (|input * filter| <= 2^22 per term); with acc32 it is then wrapped to int32, which is
 * what TFLM's int32 accumulator holds (addition modulo 2^32 does not depend on the order), and
 * requantised by the int32 rule, else by the int64 rule (te_requant16.h).
 */
static void te_conv2d_run_s16(const te_conv2d_params_t *p, const int16_t *input,
                              const int8_t *filter, const int64_t *bias64,
                              const int32_t *bias32, int16_t *output, int acc32)
{
    const int32_t group_out = p->output.c / p->groups;
    int32_t b, oy, ox, oc, ky, kx, ic;
    for (b = 0; b < p->output.n; ++b) {
        for (oy = 0; oy < p->output.h; ++oy) {
            const int32_t in_y0 = oy * p->stride_h - p->pad_h;
            for (ox = 0; ox < p->output.w; ++ox) {
                const int32_t in_x0 = ox * p->stride_w - p->pad_w;
                int16_t *out = output + ((b * p->output.h + oy) * p->output.w + ox) * p->output.c;
                for (oc = 0; oc < p->output.c; ++oc) {
                    const int32_t ic0 = (oc / group_out) * p->filter.c;
                    int64_t acc = 0;
                    int32_t y;
                    for (ky = 0; ky < p->filter.h; ++ky) {
                        const int32_t in_y = in_y0 + ky * p->dilation_h;
                        if (in_y < 0 || in_y >= p->input.h) {
                            continue;
                        }
                        for (kx = 0; kx < p->filter.w; ++kx) {
                            const int32_t in_x = in_x0 + kx * p->dilation_w;
                            const int16_t *in_px;
                            const int8_t *f_px;
                            if (in_x < 0 || in_x >= p->input.w) {
                                continue;
                            }
                            in_px = input + ((b * p->input.h + in_y) * p->input.w + in_x) *
                                                p->input.c + ic0;
                            f_px = filter + ((oc * p->filter.h + ky) * p->filter.w + kx) *
                                                p->filter.c;
                            for (ic = 0; ic < p->filter.c; ++ic) {
                                acc += (int32_t)in_px[ic] * (int32_t)f_px[ic];
                            }
                        }
                    }
                    if (acc32) {
                        acc += bias32 != NULL ? bias32[oc] : 0;
                        y = te_requantize(&p->rq, oc, te_acc32_s16(acc));
                    } else {
                        acc += bias64 != NULL ? bias64[oc] : 0;
                        y = te_requantize_s64(&p->rq, oc, acc);
                    }
                    out[oc] = (int16_t)te_clamp(y, p->q.act_min, p->q.act_max);
                }
            }
        }
    }
}

te_status_t te_conv2d_s16(const te_conv2d_params_t *p, const int16_t *input,
                          const int8_t *filter, const int64_t *bias, int16_t *output)
{
    const te_status_t st = te_conv2d_check_s16(p, input, filter, output, 0);
    if (st == TE_OK) {
        te_conv2d_run_s16(p, input, filter, bias, NULL, output, 0);
    }
    return st;
}

te_status_t te_conv2d_acc32_s16(const te_conv2d_params_t *p, const int16_t *input,
                                const int8_t *filter, const int32_t *bias, int16_t *output)
{
    const te_status_t st = te_conv2d_check_s16(p, input, filter, output, 1);
    if (st == TE_OK) {
        te_conv2d_run_s16(p, input, filter, NULL, bias, output, 1);
    }
    return st;
}
