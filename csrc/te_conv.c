#include "te_conv.h"
/* te_simd.h sets TE_SIMD: 1 on a core with the DSP extension in an optimised build, else 0 and
 * the portable loops are the whole kernel. The code generator ships it with this file. */
#include "te_simd.h"

/* Output pixels the in-place pointwise kernel's scratch holds (te_conv2d_1x1_inplace_s8).
 * Conv2D.scratch_bytes in tinyengine/ops/conv.py must plan the same: output channels x this.
 * With 2 the SIMD path runs every pixel pair as 2x2 blocks (the portable path uses one pixel). */
#define TE_CONV_1X1_INPLACE_PIXELS 1

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
 * register. Generic: the same blocks over the taps of each output pixel, the run of a filter row
 * that lies inside the image being contiguous in NHWC (one run per kernel row when dilation_w is
 * 1 and there is one group). No im2col: the memory plan is the portable path's.
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

/** Pointwise convolution, channel pairs outside, pixel pairs inside. */
static void te_conv2d_1x1_simd(const te_conv2d_params_t *p, const int8_t *input,
                               const int8_t *filter, const int32_t *bias, int8_t *output)
{
    const int32_t ic = p->input.c, oc_n = p->output.c;
    const int32_t n_px = p->output.n * p->output.h * p->output.w;
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

/** Loop-invariant views of a call's requantisation, hoisted out of the block loops (their
 * assembly clobbers memory, so fields of p would be reloaded after each). */
typedef struct {
    const int32_t *mult, *shift; /* this block's entries */
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

/** All output channels of one pixel x into dst: four channels per inner product (the pixel's
 * input lanes shared by four filter rows), the tail in pairs and singles. */
TE_SIMD_INLINE void te_conv2d_1x1_px_simd(const te_conv2d_params_t *p, const int8_t *x,
                                          const int8_t *filter, const int32_t *bias,
                                          int8_t *dst, int32_t n, int full,
                                          const te_simd_act_t *a)
{
    const int32_t ic = p->input.c, oc_n = p->output.c;
    const int32_t off2 = te_simd_dup16(p->q.input_offset);
    te_conv_rq_iter_t r = te_conv_rq_iter(p);
    const int8_t *w = filter;
    int32_t oc;
    for (oc = 0; oc + 4 <= oc_n; oc += 4) {
        int32_t s[4];
        if (bias != NULL) {
            s[0] = bias[oc];
            s[1] = bias[oc + 1];
            s[2] = bias[oc + 2];
            s[3] = bias[oc + 3];
        } else {
            s[0] = s[1] = s[2] = s[3] = 0;
        }
        te_simd_dot_1x4(x, w, ic, n, off2, s);
        w += 4 * ic;
        s[0] = te_simd_requant(s[0], te_conv_rq_at(&r, 0));
        s[1] = te_simd_requant(s[1], te_conv_rq_at(&r, 1));
        s[2] = te_simd_requant(s[2], te_conv_rq_at(&r, 2));
        s[3] = te_simd_requant(s[3], te_conv_rq_at(&r, 3));
        r.mult += 4 * r.step;
        r.shift += 4 * r.step;
        if (full) {
            dst[oc] = (int8_t)s[0];
            dst[oc + 1] = (int8_t)s[1];
            dst[oc + 2] = (int8_t)s[2];
            dst[oc + 3] = (int8_t)s[3];
        } else {
            te_simd_store4(dst + oc,
                           te_clamp4(te_pack4(s[0], s[1], s[2], s[3]), a->lo4, a->hi4));
        }
    }
    for (; oc < oc_n; ++oc) {
        const int32_t acc = te_simd_dot_1x1(x, w, ic, off2, 0, bias != NULL ? bias[oc] : 0);
        dst[oc] = te_simd_out1(acc, te_conv_rq_at(&r, 0), a->lo, a->hi);
        w += ic;
        r.mult += r.step;
        r.shift += r.step;
    }
}

TE_SIMD_NOINLINE static void te_conv2d_1x1_pixel_any(const te_conv2d_params_t *p,
                                                     const int8_t *x, const int8_t *filter,
                                                     const int32_t *bias, int8_t *dst,
                                                     const te_simd_act_t *a)
{
    te_conv2d_1x1_px_simd(p, x, filter, bias, dst, p->input.c, 0, a);
}

/* The common case on its own (input channels a multiple of 8, an activation SSAT clamps). On
 * Arm with per-channel requantisation and a bias, the loop over groups of four channels is one
 * block of assembly (see te_conv2d_1x1_rows2_x8): the pixel's input lanes are extended once per
 * 4 values and shared by four filter rows (w0, w0 + ic, w2, w2 + ic; 23 instructions per 16
 * MACs), then the four outputs are requantised two at a time. */
TE_SIMD_NOINLINE static void te_conv2d_1x1_pixel_x8(const te_conv2d_params_t *p,
                                                    const int8_t *x, const int8_t *filter,
                                                    const int32_t *bias, int8_t *dst,
                                                    const te_simd_act_t *a)
{
#if TE_SIMD_ASM
    const int32_t ic = p->input.c, oc_n = p->output.c;
    if (p->rq.per_channel && bias != NULL && oc_n >= 4 && ic >= 8) {
        const int8_t *const x0 = x, *const x_end = x + ic;
        const int32_t *mp = p->rq.multiplier, *shp = p->rq.shift, *bp = bias;
        const int32_t zp2p1 = 2 * p->q.output_offset + 1;
        const int32_t off2 = te_simd_dup16(p->q.input_offset);
        int32_t quads = oc_n >> 2;
        int8_t *out = dst;
        const int8_t *w0 = filter, *w2 = filter + 2 * ic;
        int32_t x_, off, end, s0, s1, s2, s3, t0, t1, xe, xo;
        __asm__ volatile(
            "0:\n\t"
            "ldr %[t0], %[bp]\n\t"
            "ldrd %[s0], %[s1], [%[t0]], #8\n\t"
            "ldrd %[s2], %[s3], [%[t0]], #8\n\t"
            "str %[t0], %[bp]\n\t"
            "ldr %[x], %[x0]\n\t"
            "ldr %[off], %[off2]\n\t"
            "ldr %[end], %[xend]\n\t"
            "tst %[ws], #8\n\t" /* 16 values per iteration; an odd 8 enters halfway */
            "bne 2f\n\t"
            "1:\n\t" TE_ASM_STEP_1X4 TE_ASM_STEP_1X4
            "2:\n\t" TE_ASM_STEP_1X4 TE_ASM_STEP_1X4
            "cmp %[x], %[end]\n\t"
            "bne 1b\n\t"
            "add %[w0], %[w2], %[ws]\n\t" /* rows 4 and 6: w2 has reached row 3 */
            "add %[w2], %[w0], %[ws], lsl #1\n\t"
            /* channels 0 and 1, then 2 and 3: multipliers, shifts sh < 0 (e = -sh, e - 1 = ~sh),
             * round = (2 zp + 1) << (e - 1) */
            "ldr %[x], %[mp]\n\t"
            "ldrd %[t0], %[t1], [%[x]], #8\n\t"
            "str %[x], %[mp]\n\t"
            "ldr %[x], %[shp]\n\t"
            "ldrd %[xe], %[xo], [%[x]], #8\n\t"
            "str %[x], %[shp]\n\t"
            "ldr %[x], %[zz]\n\t"
            "mvn %[off], %[xe]\n\t"
            "lsl %[off], %[x], %[off]\n\t"
            "rsb %[xe], %[xe], #0\n\t"
            TE_ASM_REQUANT("s0", "s0", "t0", "off", "xe", "end")
            "mvn %[off], %[xo]\n\t"
            "lsl %[off], %[x], %[off]\n\t"
            "rsb %[xo], %[xo], #0\n\t"
            TE_ASM_REQUANT("s1", "s1", "t1", "off", "xo", "end")
            "ldr %[x], %[mp]\n\t"
            "ldrd %[t0], %[t1], [%[x]], #8\n\t"
            "str %[x], %[mp]\n\t"
            "ldr %[x], %[shp]\n\t"
            "ldrd %[xe], %[xo], [%[x]], #8\n\t"
            "str %[x], %[shp]\n\t"
            "ldr %[x], %[zz]\n\t"
            "mvn %[off], %[xe]\n\t"
            "lsl %[off], %[x], %[off]\n\t"
            "rsb %[xe], %[xe], #0\n\t"
            TE_ASM_REQUANT("s2", "s2", "t0", "off", "xe", "end")
            "mvn %[off], %[xo]\n\t"
            "lsl %[off], %[x], %[off]\n\t"
            "rsb %[xo], %[xo], #0\n\t"
            TE_ASM_REQUANT("s3", "s3", "t1", "off", "xo", "end")
            "ldr %[x], %[out]\n\t"
            "strb %[s0], [%[x]], #1\n\t"
            "strb %[s1], [%[x]], #1\n\t"
            "strb %[s2], [%[x]], #1\n\t"
            "strb %[s3], [%[x]], #1\n\t"
            "str %[x], %[out]\n\t"
            "ldr %[t0], %[quads]\n\t"
            "subs %[t0], %[t0], #1\n\t"
            "str %[t0], %[quads]\n\t"
            "bne 0b\n\t"
            : [w0] "+r"(w0), [w2] "+r"(w2), [x] "=&r"(x_), [off] "=&r"(off), [end] "=&r"(end),
              [s0] "=&r"(s0), [s1] "=&r"(s1), [s2] "=&r"(s2), [s3] "=&r"(s3), [t0] "=&r"(t0),
              [t1] "=&r"(t1), [xe] "=&r"(xe), [xo] "=&r"(xo), [bp] "+m"(bp), [mp] "+m"(mp),
              [shp] "+m"(shp), [out] "+m"(out), [quads] "+m"(quads)
            : [ws] "r"(ic), [x0] "m"(x0), [xend] "m"(x_end), [off2] "m"(off2),
              [zz] "m"(zp2p1)
            : "cc", "memory");
        if (oc_n & 3) { /* the last channels through the C path, on their own rows */
            te_conv2d_params_t rest = *p;
            te_requant_t rq = p->rq;
            const int32_t done = oc_n & ~3;
            rq.multiplier += done;
            rq.shift += done;
            rest.rq = rq;
            rest.output.c = oc_n - done;
            rest.filter.n = oc_n - done;
            te_conv2d_1x1_pixel_any(&rest, x0, filter + done * ic, bias + done, dst + done, a);
        }
        return;
    }
    te_conv2d_1x1_pixel_any(p, x, filter, bias, dst, a);
#else
    te_conv2d_1x1_px_simd(p, x, filter, bias, dst, p->input.c & ~7, 1, a);
#endif
}

/** All output channels of pixels x and x + input.c into d0 and d0 + output.c: 2x2 blocks with
 * the input offset in the loop (no row sums: the pixels come a pair at a time). */
TE_SIMD_INLINE void te_conv2d_1x1_pair_simd(const te_conv2d_params_t *p, const int8_t *x,
                                            const int8_t *filter, const int32_t *bias,
                                            int8_t *d0, int32_t n, int full,
                                            const te_simd_act_t *a)
{
    const int32_t ic = p->input.c, oc_n = p->output.c;
    const int32_t off2 = te_simd_dup16(p->q.input_offset);
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
        te_simd_dot_2x2(x, ic, w, ic, n, 1, off2, s);
        w += 2 * ic;
        te_simd_store_2x2(d0 + oc, oc_n, s, te_conv_rq_at(&r, 0), te_conv_rq_at(&r, 1), full,
                          a);
        r.mult += 2 * r.step;
        r.shift += 2 * r.step;
    }
    if (oc < oc_n) {
        int32_t s[2];
        s[0] = s[1] = bias != NULL ? bias[oc] : 0;
        te_simd_dot_2x1(x, ic, w, ic, off2, s);
        d0[oc] = te_simd_out1(s[0], te_conv_rq_at(&r, 0), a->lo, a->hi);
        d0[oc_n + oc] = te_simd_out1(s[1], te_conv_rq_at(&r, 0), a->lo, a->hi);
    }
}

TE_SIMD_NOINLINE static void te_conv2d_1x1_pair_any(const te_conv2d_params_t *p,
                                                    const int8_t *x, const int8_t *filter,
                                                    const int32_t *bias, int8_t *d0,
                                                    const te_simd_act_t *a)
{
    te_conv2d_1x1_pair_simd(p, x, filter, bias, d0, p->input.c, 0, a);
}

/* The common case on its own (input channels a multiple of 8, an activation SSAT clamps). On
 * Arm with per-channel requantisation and a bias, the loop over channel pairs is one block of
 * assembly, for the reasons given at te_conv2d_1x1_rows2_x8; the input offset takes the
 * fourteenth register, so the loop's end and the per-pair state live in memory operands. */
TE_SIMD_NOINLINE static void te_conv2d_1x1_pair_x8(const te_conv2d_params_t *p,
                                                   const int8_t *x, const int8_t *filter,
                                                   const int32_t *bias, int8_t *d0,
                                                   const te_simd_act_t *a)
{
#if TE_SIMD_ASM
    const int32_t ic = p->input.c, oc_n = p->output.c;
    if (p->rq.per_channel && bias != NULL && oc_n >= 2 && ic >= 8) {
        const int8_t *const x0 = x, *const x_end = x + ic;
        const int32_t *mp = p->rq.multiplier, *shp = p->rq.shift, *bp = bias;
        const int32_t zp2p1 = 2 * p->q.output_offset + 1;
        const int32_t off2 = te_simd_dup16(p->q.input_offset);
        int32_t pairs = oc_n >> 1;
        int8_t *dst = d0;
        const int8_t *w = filter;
        int32_t x_, off, s00, s01, s10, s11, t0, t1, t2, t3, t4, t5;
        __asm__ volatile(
            "0:\n\t"
            "ldr %[t0], %[bp]\n\t"
            "ldrd %[s00], %[s01], [%[t0]], #8\n\t"
            "str %[t0], %[bp]\n\t"
            "mov %[s10], %[s00]\n\t"
            "mov %[s11], %[s01]\n\t"
            "ldr %[x], %[x0]\n\t"
            "ldr %[off], %[off2]\n\t"
            "tst %[st], #8\n\t" /* 16 values per iteration; an odd 8 enters halfway */
            "bne 2f\n\t"
            "1:\n\t" TE_ASM_STEP_2X2("st", "st", TE_ASM_X_OFF)
                TE_ASM_STEP_2X2("st", "st", TE_ASM_X_OFF)
            "2:\n\t" TE_ASM_STEP_2X2("st", "st", TE_ASM_X_OFF)
                TE_ASM_STEP_2X2("st", "st", TE_ASM_X_OFF)
            "ldr %[t0], %[xend]\n\t"
            "cmp %[x], %[t0]\n\t"
            "bne 1b\n\t"
            "add %[w], %[w], %[st]\n\t" /* the next pair's first row */
            "ldr %[t4], %[mp]\n\t"
            "ldrd %[t0], %[t1], [%[t4]], #8\n\t" /* multipliers */
            "str %[t4], %[mp]\n\t"
            "ldr %[t4], %[shp]\n\t"
            "ldrd %[t2], %[t3], [%[t4]], #8\n\t" /* shifts sh < 0: e = -sh, e - 1 = ~sh */
            "str %[t4], %[shp]\n\t"
            "ldr %[x], %[zz]\n\t"
            "mvn %[t4], %[t2]\n\t"
            "lsl %[t4], %[x], %[t4]\n\t" /* round of channel 0 */
            "mvn %[off], %[t3]\n\t"
            "lsl %[off], %[x], %[off]\n\t" /* round of channel 1 */
            "rsb %[t2], %[t2], #0\n\t"
            "rsb %[t3], %[t3], #0\n\t"
            TE_ASM_REQUANT("s00", "s00", "t0", "t4", "t2", "x")
            TE_ASM_REQUANT("s10", "s10", "t0", "t4", "t2", "x")
            TE_ASM_REQUANT("s01", "s01", "t1", "off", "t3", "x")
            TE_ASM_REQUANT("s11", "s11", "t1", "off", "t3", "x")
            "ldr %[t0], %[dst]\n\t"
            "ldr %[t1], %[stride]\n\t"
            "strb %[s00], [%[t0]]\n\t"
            "strb %[s01], [%[t0], #1]\n\t"
            "add %[t1], %[t0], %[t1]\n\t"
            "strb %[s10], [%[t1]]\n\t"
            "strb %[s11], [%[t1], #1]\n\t"
            "add %[t0], %[t0], #2\n\t"
            "str %[t0], %[dst]\n\t"
            "ldr %[t0], %[pairs]\n\t"
            "subs %[t0], %[t0], #1\n\t"
            "str %[t0], %[pairs]\n\t"
            "bne 0b\n\t"
            : [w] "+r"(w), [x] "=&r"(x_), [off] "=&r"(off), [s00] "=&r"(s00),
              [s01] "=&r"(s01), [s10] "=&r"(s10), [s11] "=&r"(s11), [t0] "=&r"(t0),
              [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3), [t4] "=&r"(t4), [t5] "=&r"(t5),
              [bp] "+m"(bp), [mp] "+m"(mp), [shp] "+m"(shp), [dst] "+m"(dst),
              [pairs] "+m"(pairs)
            : [st] "r"(ic), [x0] "m"(x0), [xend] "m"(x_end), [off2] "m"(off2),
              [zz] "m"(zp2p1), [stride] "m"(oc_n)
            : "cc", "memory");
        if (oc_n & 1) { /* the last channel, through the portable-order C path */
            const int32_t oc = oc_n - 1;
            int32_t s[2];
            s[0] = s[1] = bias[oc];
            te_simd_dot_2x1(x0, ic, filter + oc * ic, ic, off2, s);
            d0[oc] = te_simd_out1(s[0], te_simd_rq_channel(&p->rq, oc, p->q.output_offset),
                                  a->lo, a->hi);
            d0[oc_n + oc] = te_simd_out1(s[1], te_simd_rq_channel(&p->rq, oc,
                                                                  p->q.output_offset),
                                         a->lo, a->hi);
        }
        return;
    }
    te_conv2d_1x1_pair_any(p, x, filter, bias, d0, a);
#else
    te_conv2d_1x1_pair_simd(p, x, filter, bias, d0, p->input.c & ~7, 1, a);
#endif
}

/** n bytes from src to dst (distinct), a word at a time. */
TE_SIMD_INLINE void te_conv_copy(int8_t *dst, const int8_t *src, int32_t n)
{
    int32_t i;
    for (i = n >> 2; i > 0; --i) {
        te_simd_store4(dst, te_simd_load4(src));
        dst += 4;
        src += 4;
    }
    for (i = n & 3; i > 0; --i) {
        *dst++ = *src++;
    }
}

/**
 * In-place pointwise convolution, in the portable path's pixel order. Two pixels at a time share
 * their filter loads (2x2 blocks) wherever their outputs can be put down without overwriting an
 * input still to be read: straight to their places once outputs narrower than the inputs (going
 * forwards) or wider (going backwards) have left a gap of two pixels, or through the scratch
 * when it holds two pixels. Otherwise one pixel at a time (1x4 blocks) through the scratch.
 */
static void te_conv2d_1x1_inplace_simd(const te_conv2d_params_t *p, const int8_t *input,
                                       const int8_t *filter, const int32_t *bias,
                                       int8_t *output, int8_t *scratch)
{
    const int32_t ic = p->input.c, oc_n = p->output.c;
    const int32_t n_px = p->output.n * p->output.h * p->output.w;
    const te_simd_act_t a = te_simd_act(&p->q);
    const int fast = (ic & 7) == 0 && te_simd_act_full(&p->q);
    const int pairs_in_scratch = TE_CONV_1X1_INPLACE_PIXELS >= 2;
    const int forward = oc_n <= ic;
    int32_t done;
    for (done = 0; done < n_px;) {
        /* Forward: pixels i, i + 1 with i = done; live inputs are pixels >= i, and the pair's
         * outputs [i oc, (i + 2) oc) are clear of them when (i + 2) oc <= i ic. Backward:
         * pixels i, i + 1 with i + 2 = n_px - done; live inputs [0, (i + 2) ic), outputs clear
         * when i oc >= (i + 2) ic. */
        const int32_t i = forward ? done : n_px - done - 2;
        const int direct = forward ? (i + 2) * oc_n <= i * ic : i * oc_n >= (i + 2) * ic;
        if (done + 2 <= n_px && (direct || pairs_in_scratch)) {
            int8_t *dst = direct ? output + i * oc_n : scratch;
            if (fast) {
                te_conv2d_1x1_pair_x8(p, input + i * ic, filter, bias, dst, &a);
            } else {
                te_conv2d_1x1_pair_any(p, input + i * ic, filter, bias, dst, &a);
            }
            if (!direct) {
                te_conv_copy(output + i * oc_n, scratch, 2 * oc_n);
            }
            done += 2;
        } else {
            const int32_t j = forward ? done : n_px - 1 - done;
            if (fast) {
                te_conv2d_1x1_pixel_x8(p, input + j * ic, filter, bias, scratch, &a);
            } else {
                te_conv2d_1x1_pixel_any(p, input + j * ic, filter, bias, scratch, &a);
            }
            te_conv_copy(output + j * oc_n, scratch, oc_n);
            done += 1;
        }
    }
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
 * valid taps. Where all taps of the pixel pair are valid (the interior), the input offset is
 * folded into the bias as in the pointwise path.
 */
static void te_conv2d_simd(const te_conv2d_params_t *p, const int8_t *input,
                           const int8_t *filter, const int32_t *bias, int8_t *output)
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
    for (oc = 0; oc < oc_n; oc += rows) {
        /* A pair never straddles two groups: an odd group ends with a single channel. */
        const int32_t ws = ((oc % ocg) + 2 <= ocg ? 1 : 0) * k;
        const int32_t ic0 = (oc / ocg) * icg;
        const int8_t *w = filter + oc * k;
        te_conv_pair_t c, cf;
        rows = ws != 0 ? 2 : 1;
        c = te_conv_pair(p, bias, oc, oc + rows - 1);
        cf = te_conv_pair_folded(p, bias, filter, k, oc, oc + rows - 1);
        for (b = 0; b < p->output.n; ++b) {
            for (oy = 0; oy < p->output.h; ++oy) {
                const int32_t in_y0 = oy * p->stride_h - p->pad_h;
                int32_t ky0, ky1;
                int8_t *out = output + ((b * p->output.h + oy) * p->output.w) * oc_n + oc;
                te_conv_valid_taps(in_y0, dh, p->input.h, fh, &ky0, &ky1);
                for (ox = 0; ox < p->output.w;) {
                    const int32_t in_x0 = ox * p->stride_w - p->pad_w;
                    const int32_t base = ((b * p->input.h + in_y0) * in_w + in_x0) * c_in + ic0;
                    int32_t kx0, kx1, kx0b, kx1b;
                    te_conv_valid_taps(in_x0, dw, in_w, fw, &kx0, &kx1);
                    te_conv_valid_taps(in_x0 + p->stride_w, dw, in_w, fw, &kx0b, &kx1b);
                    if (ox + 1 < p->output.w && kx0 == 0 && kx1 == fw && kx0b == 0 &&
                        kx1b == fw) {
                        /* Two pixels, every column tap inside the image. */
                        const int interior = ky0 == 0 && ky1 == fh;
                        const te_conv_pair_t *cc = interior ? &cf : &c;
                        int32_t s[4];
                        s[0] = s[2] = cc->b0;
                        s[1] = s[3] = cc->b1;
                        for (ky = ky0; ky < ky1; ++ky) {
                            const int8_t *x = input + (base + ky * dh * in_w * c_in);
                            const int8_t *wr = w + ky * fw * icg;
                            if (row_runs) {
                                if (interior) {
                                    te_simd_dot_2x2(x, xs, wr, ws, fw * icg, 0, 0, s);
                                } else {
                                    te_simd_dot_2x2(x, xs, wr, ws, fw * icg, 1, off2, s);
                                }
                            } else {
                                for (kx = 0; kx < fw; ++kx) {
                                    te_simd_dot_2x2(x + kx * dw * c_in, xs, wr + kx * icg, ws,
                                                    icg, 1, interior ? 0 : off2, s);
                                }
                            }
                        }
                        if (rows == 2) {
                            te_simd_store_2x2(out, oc_n, s, cc->q0, cc->q1, 0, &act);
                        } else {
                            out[0] = te_simd_out1(s[0], cc->q0, lo, hi);
                            out[oc_n] = te_simd_out1(s[2], cc->q0, lo, hi);
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
#endif /* TE_SIMD */

te_status_t te_conv2d_s8(const te_conv2d_params_t *p, const int8_t *input, const int8_t *filter,
                         const int32_t *bias, int8_t *output)
{
    int32_t b, oy, ox, oc, ky, kx, ic;
    int32_t group_out;
    const te_status_t st = te_conv2d_check(p, input, filter, output);
    if (st != TE_OK) {
        return st;
    }
#if TE_SIMD
    if (te_simd_rq_ok(&p->rq, bias, p->output.c, p->filter.h * p->filter.w * p->filter.c,
                      TE_CONV_MAX_TERM)) {
        te_conv2d_simd(p, input, filter, bias, output);
        return TE_OK;
    }
#endif
    group_out = p->output.c / p->groups; /* output channels per group */
    for (b = 0; b < p->output.n; ++b) {
        for (oy = 0; oy < p->output.h; ++oy) {
            const int32_t in_y0 = oy * p->stride_h - p->pad_h;
            for (ox = 0; ox < p->output.w; ++ox) {
                const int32_t in_x0 = ox * p->stride_w - p->pad_w;
                for (oc = 0; oc < p->output.c; ++oc) {
                    /* The group's first input channel. */
                    const int32_t ic0 = (oc / group_out) * p->filter.c;
                    int32_t acc = 0;
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
                            in_px = input + ((b * p->input.h + in_y) * p->input.w + in_x) * p->input.c +
                                    ic0;
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
                    output[((b * p->output.h + oy) * p->output.w + ox) * p->output.c + oc] =
                        (int8_t)te_clamp(acc, p->q.act_min, p->q.act_max);
                }
            }
        }
    }
    return TE_OK;
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

int32_t te_conv2d_1x1_inplace_get_buffer_size(const te_conv2d_params_t *p)
{
    return p->output.c * TE_CONV_1X1_INPLACE_PIXELS;
}

te_status_t te_conv2d_1x1_inplace_s8(const te_conv2d_params_t *p, const int8_t *input,
                                     const int8_t *filter, const int32_t *bias, int8_t *output,
                                     int8_t *scratch)
{
    int32_t i, c, n_px;
    const te_status_t st = te_conv2d_check(p, input, filter, output);
    if (st != TE_OK) {
        return st;
    }
    if (!te_conv2d_is_pointwise(p)) {
        return TE_ERR_ARG;
    }
    if (scratch == NULL) {
        return TE_ERR_SCRATCH;
    }
#if TE_SIMD
    if (te_simd_rq_ok(&p->rq, bias, p->output.c, p->input.c, TE_CONV_MAX_TERM)) {
        te_conv2d_1x1_inplace_simd(p, input, filter, bias, output, scratch);
        return TE_OK;
    }
#endif
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

te_status_t te_conv2d_1x1_s8(const te_conv2d_params_t *p, const int8_t *input,
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
#if TE_SIMD
    if (te_simd_rq_ok(&p->rq, bias, p->output.c, p->input.c, TE_CONV_MAX_TERM)) {
        te_conv2d_1x1_simd(p, input, filter, bias, output);
        return TE_OK;
    }
#endif
    /* Outside padding and strides a pointwise convolution is a matrix product over pixels. */
    n_px = p->output.n * p->output.h * p->output.w;
    for (px = 0; px < n_px; ++px) {
        te_conv2d_1x1_pixel(p, input + px * p->input.c, filter, bias,
                            output + px * p->output.c);
    }
    return TE_OK;
}
