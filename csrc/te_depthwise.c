#include "te_depthwise.h"
#include "te_requant16.h"
/* te_simd.h sets TE_SIMD: 1 on a core with the DSP extension in an optimised build, else 0 and
 * the portable loops are the whole kernel. The code generator ships it with this file. */
#include "te_simd.h"

static te_status_t te_depthwise_conv_check(const te_depthwise_conv_params_t *p,
                                           const int8_t *input, const int8_t *filter,
                                           const int8_t *output)
{
    if (p == NULL || input == NULL || filter == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    if (p->depth_multiplier < 1 || p->input.n < 1 || p->input.h < 1 || p->input.w < 1 ||
        p->input.c < 1 || p->filter.h < 1 || p->filter.w < 1 || p->output.h < 1 ||
        p->output.w < 1) {
        return TE_ERR_ARG;
    }
    if (p->filter.n != 1 || p->filter.c != p->input.c * p->depth_multiplier ||
        p->output.c != p->filter.c || p->input.n != p->output.n || p->stride_h < 1 ||
        p->stride_w < 1 || p->dilation_h < 1 || p->dilation_w < 1 || p->pad_h < 0 ||
        p->pad_w < 0 || p->rq.multiplier == NULL || p->rq.shift == NULL) {
        return TE_ERR_ARG;
    }
    return TE_OK;
}

/* The small-plane in-place path: the largest padded block it copies, in pixels (words). */
#define TE_DW_SMALL_MAX_PIXELS 64

/**
 * Pixels of the padded copy te_depthwise_inplace_small_simd makes of four channels, or 0 outside
 * its domain: depth multiplier 1, a 3x3 window, dilation 1, stride 1, padding 1 on each side
 * (the in-place shape), at least 4 channels, a plane too small for the ring of delayed outputs
 * (4 * (w + 2) > h * w, see te_depthwise_inplace_ring_simd), the padded plane (h + 2) x (w + 2)
 * at most TE_DW_SMALL_MAX_PIXELS, and the input's zero point (-input_offset) an int8 so that
 * the padding can hold it. Shared by the scratch size (every build) and the SIMD kernel.
 */
static int32_t te_dw_small_pixels(const te_depthwise_conv_params_t *p)
{
    const int32_t h = p->output.h, w = p->output.w;
    const int32_t pixels = (h + 2) * (w + 2);
    if (p->depth_multiplier != 1 || p->filter.h != 3 || p->filter.w != 3 ||
        p->dilation_h != 1 || p->dilation_w != 1 || p->stride_h != 1 || p->stride_w != 1 ||
        p->pad_h != 1 || p->pad_w != 1 || p->output.c < 4 || h < 1 || w < 1 ||
        4 * (w + 2) <= h * w || pixels > TE_DW_SMALL_MAX_PIXELS || p->q.input_offset < -127 ||
        p->q.input_offset > 128) {
        return 0;
    }
    return pixels;
}

#if TE_SIMD
/* ---- SIMD paths (te_simd.h): the same results as the portable loops, bit for bit ------------
 *
 * Four output channels per step: for each tap inside the image, one 32-bit load of the four
 * input channels (SXTAB16 adds the input offset) and one of the four filter values, then
 * SMLABB / SMLATT, one MAC each per channel, since depthwise channels never sum together. With a
 * depth multiplier that is a multiple of 4, the four output channels share one input value
 * (SMLABB / SMLATB against it). Per output pixel the taps inside the image form one rectangle,
 * found once, so the loops carry no bounds checks. Other multipliers and leftover channels run
 * one channel at a time over the same rectangles.
 */

/* |filter * (input + offset)| <= 128 * 255 per term. */
#define TE_DW_MAX_TERM (128 * 255)

/** First and one-past-last k with 0 <= in0 + k * dilation < size, k < taps. */
TE_SIMD_INLINE void te_dw_valid(int32_t in0, int32_t dilation, int32_t size, int32_t taps,
                                int32_t *k0, int32_t *k1)
{
    int32_t a, b;
    if (dilation == 1) {
        a = in0 < 0 ? -in0 : 0;
        b = size - in0;
    } else {
        a = in0 < 0 ? (-in0 + dilation - 1) / dilation : 0;
        b = size - in0 <= 0 ? 0 : (size - in0 + dilation - 1) / dilation;
    }
    b = b < taps ? b : taps;
    *k0 = a;
    *k1 = b > a ? b : a;
}

/** Geometry of the tap loops, in elements. */
typedef struct {
    int32_t in_dy, in_dx; /* input step from one tap row / column to the next */
    int32_t f_dy, f_dx;   /* filter step likewise */
} te_dw_steps_t;

/** One tap of four output channels: w = their four filter values; x = four input channels, or
 * with bcast (a constant) one input value v shared by the four. */
#define TE_DW_TAP4(bcast, pi, pf, off, off2, s0, s1, s2, s3)                                    \
    do {                                                                                        \
        const uint32_t w_ = te_simd_load4(pf);                                                  \
        const int32_t w_e = te_sxtb16(w_), w_o = te_sxtb16_r8(w_);                              \
        if (bcast) {                                                                            \
            const int32_t v_ = *(pi) + (off);                                                   \
            s0 = te_smlabb(w_e, v_, s0);                                                        \
            s2 = te_smlatb(w_e, v_, s2);                                                        \
            s1 = te_smlabb(w_o, v_, s1);                                                        \
            s3 = te_smlatb(w_o, v_, s3);                                                        \
        } else {                                                                                \
            const uint32_t x_ = te_simd_load4(pi);                                              \
            const int32_t x_e = te_sxtab16(off2, x_), x_o = te_sxtab16_r8(off2, x_);            \
            s0 = te_smlabb(x_e, w_e, s0);                                                       \
            s2 = te_smlatt(x_e, w_e, s2);                                                       \
            s1 = te_smlabb(x_o, w_o, s1);                                                       \
            s3 = te_smlatt(x_o, w_o, s3);                                                       \
        }                                                                                       \
    } while (0)

/** Accumulates four output channels over a rectangle of taps; in and f point at its first. */
TE_SIMD_INLINE void te_dw_acc4(const int8_t *in, const int8_t *f, int32_t ny, int32_t nx,
                               te_dw_steps_t st, int bcast, int32_t off2, int32_t s[4])
{
    const int32_t off = te_simd_lane0(off2);
    int32_t s0 = s[0], s1 = s[1], s2 = s[2], s3 = s[3];
    int32_t ky, kx;
    for (ky = ny; ky > 0; --ky) {
        const int8_t *pi = in, *pf = f;
        for (kx = nx; kx > 0; --kx) {
            TE_DW_TAP4(bcast, pi, pf, off, off2, s0, s1, s2, s3);
            pi += st.in_dx;
            pf += st.f_dx;
        }
        in += st.in_dy;
        f += st.f_dy;
    }
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
}

/** All nine taps of a 3x3 window with dilation 1, unrolled: x steps of ci in the input and cf
 * in the filter, input rows of `row`; bcast (a constant) as in te_dw_acc4. */
TE_SIMD_INLINE void te_dw_acc4_3x3(const int8_t *in, const int8_t *f, int32_t ci, int32_t cf,
                                   int32_t row, int bcast, int32_t off2, int32_t s[4])
{
    const int32_t off = te_simd_lane0(off2);
    const int32_t ci2 = 2 * ci, cf2 = 2 * cf;
    int32_t s0 = s[0], s1 = s[1], s2 = s[2], s3 = s[3];
#define TE_DW_ROW3                                                                              \
    TE_DW_TAP4(bcast, in, f, off, off2, s0, s1, s2, s3);                                        \
    TE_DW_TAP4(bcast, in + ci, f + cf, off, off2, s0, s1, s2, s3);                              \
    TE_DW_TAP4(bcast, in + ci2, f + cf2, off, off2, s0, s1, s2, s3)
    TE_DW_ROW3;
    in += row;
    f += cf + cf2;
    TE_DW_ROW3;
    in += row;
    f += cf + cf2;
    TE_DW_ROW3;
#undef TE_DW_ROW3
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
}

/** One output channel over a rectangle of taps; in and f point at its first. */
TE_SIMD_INLINE int32_t te_dw_acc1(const int8_t *in, const int8_t *f, int32_t ny, int32_t nx,
                                  te_dw_steps_t st, int32_t off, int32_t s)
{
    int32_t ky, kx;
    for (ky = ny; ky > 0; --ky) {
        const int8_t *pi = in, *pf = f;
        for (kx = nx; kx > 0; --kx) {
            s += (*pi + off) * *pf;
            pi += st.in_dx;
            pf += st.f_dx;
        }
        in += st.in_dy;
        f += st.f_dy;
    }
    return s;
}

/** Requantisation and bias of four consecutive output channels. */
typedef struct {
    te_simd_rq_t q0, q1, q2, q3;
    int32_t b0, b1, b2, b3;
} te_dw_quad_t;

static te_dw_quad_t te_dw_quad(const te_depthwise_conv_params_t *p, const int32_t *bias,
                               int32_t oc)
{
    const int32_t zp = p->q.output_offset;
    te_dw_quad_t d;
    d.q0 = te_simd_rq_channel(&p->rq, oc, zp);
    d.q1 = te_simd_rq_channel(&p->rq, oc + 1, zp);
    d.q2 = te_simd_rq_channel(&p->rq, oc + 2, zp);
    d.q3 = te_simd_rq_channel(&p->rq, oc + 3, zp);
    d.b0 = bias != NULL ? bias[oc] : 0;
    d.b1 = bias != NULL ? bias[oc + 1] : 0;
    d.b2 = bias != NULL ? bias[oc + 2] : 0;
    d.b3 = bias != NULL ? bias[oc + 3] : 0;
    return d;
}

/** Where one output row's taps start: the rows inside the image and the index of the first. */
typedef struct {
    int32_t ky0, ny; /* first valid kernel row, number of valid rows */
    int32_t in_row;  /* index of input (b, in row of ky0, column 0, channel 0) */
} te_dw_row_t;

/* Always inline: with more callers GCC -Os calls it, and the generic loops of micro_speech's
 * depthwise layer then ran 1.40M -> 1.68M instructions. */
TE_SIMD_INLINE te_dw_row_t te_dw_row(const te_depthwise_conv_params_t *p, int32_t b, int32_t oy)
{
    const int32_t in_y0 = oy * p->stride_h - p->pad_h;
    te_dw_row_t r;
    int32_t ky1;
    te_dw_valid(in_y0, p->dilation_h, p->input.h, p->filter.h, &r.ky0, &ky1);
    r.ny = ky1 - r.ky0;
    r.in_row = (b * p->input.h + in_y0 + r.ky0 * p->dilation_h) * p->input.w * p->input.c;
    return r;
}

/** Output pixel (row r, ox) of channels oc..oc+3 (multiplier 1, or a multiple of 4 with
 * bcast) as a word of int8 lanes, requantised and clamped. */
TE_SIMD_INLINE uint32_t te_dw_pixel4(const te_depthwise_conv_params_t *p, const int8_t *input,
                                     const int8_t *filter, te_dw_row_t r, int32_t ox,
                                     int32_t oc, int bcast, const te_dw_quad_t *d,
                                     const te_simd_act_t *a, int32_t off2)
{
    const int32_t in_x0 = ox * p->stride_w - p->pad_w, c_in = p->input.c, c_f = p->filter.c;
    int32_t kx0, kx1, s[4];
    te_dw_valid(in_x0, p->dilation_w, p->input.w, p->filter.w, &kx0, &kx1);
    s[0] = d->b0;
    s[1] = d->b1;
    s[2] = d->b2;
    s[3] = d->b3;
    if (r.ny > 0 && kx1 > kx0) {
        const int32_t in_idx = r.in_row + (in_x0 + kx0 * p->dilation_w) * c_in +
                               (bcast ? oc / p->depth_multiplier : oc);
        const int32_t f_idx = (r.ky0 * p->filter.w + kx0) * c_f + oc;
        if (!bcast && r.ny == 3 && kx1 - kx0 == 3 && p->filter.w == 3 && p->dilation_w == 1 &&
            p->dilation_h == 1) {
            te_dw_acc4_3x3(input + in_idx, filter + f_idx, c_in, c_f, p->input.w * c_in, 0, off2,
                           s);
        } else {
            te_dw_steps_t st;
            st.in_dy = p->dilation_h * p->input.w * c_in;
            st.in_dx = p->dilation_w * c_in;
            st.f_dy = p->filter.w * c_f;
            st.f_dx = c_f;
            te_dw_acc4(input + in_idx, filter + f_idx, r.ny, kx1 - kx0, st, bcast, off2, s);
        }
    }
    return te_clamp4(te_pack4(te_simd_requant(s[0], d->q0), te_simd_requant(s[1], d->q1),
                              te_simd_requant(s[2], d->q2), te_simd_requant(s[3], d->q3)),
                     a->lo4, a->hi4);
}

/** Which output columns see all three columns of a 3x3 window (dilation 1): [lo, hi). */
static void te_dw_interior_x(const te_depthwise_conv_params_t *p, int32_t *lo, int32_t *hi)
{
    const int32_t sw = p->stride_w, pw = p->pad_w;
    /* ox * sw - pw >= 0 and ox * sw - pw + 2 <= input.w - 1 */
    *lo = (pw + sw - 1) / sw;
    *hi = p->input.w - 3 + pw >= 0 ? (p->input.w - 3 + pw) / sw + 1 : 0;
    if (*hi > p->output.w) {
        *hi = p->output.w;
    }
    if (*hi < *lo) {
        *hi = *lo;
    }
}

/** te_dw_pixel4 for a pixel whose 3x3 window (dilation 1) lies inside the image; in points at
 * its tap (0, 0) (input channel oc, or oc / multiplier with bcast), f at the filter's. */
TE_SIMD_INLINE uint32_t te_dw_pixel4_3x3(const int8_t *in, const int8_t *f, int32_t ci,
                                         int32_t cf, int32_t row, int bcast,
                                         const te_dw_quad_t *d, const te_simd_act_t *a,
                                         int32_t off2)
{
    int32_t s[4];
    s[0] = d->b0;
    s[1] = d->b1;
    s[2] = d->b2;
    s[3] = d->b3;
    te_dw_acc4_3x3(in, f, ci, cf, row, bcast, off2, s);
    return te_clamp4(te_pack4(te_simd_requant(s[0], d->q0), te_simd_requant(s[1], d->q1),
                              te_simd_requant(s[2], d->q2), te_simd_requant(s[3], d->q3)),
                     a->lo4, a->hi4);
}

/** Whether te_dw_pixel4_3x3 applies to the layer (to rows of 3 valid taps, columns in the
 * interior). */
static int te_dw_fast3(const te_depthwise_conv_params_t *p)
{
    return p->filter.h == 3 && p->filter.w == 3 && p->dilation_h == 1 && p->dilation_w == 1;
}

/* ---- 3x3 windows with depth multiplier 1: the filter widened once per four channels ---------
 *
 * te_dw_pixel4_3x3 loads and sign-extends the four filter values of every tap at every pixel:
 * ten instructions per tap. Here a quad's nine filter words are extended once (te_dw_w9), so a
 * tap is one input load, two SXTAB16, one LDRD of the extended filter and four MACs; the window
 * positions at the image's border take their rectangle of taps from the same table, and the
 * requantisation constants of the quad stay in one struct the compiler reads per pixel.
 */

/** A quad's 3x3 filter, sign-extended: tap t = 3 ky + kx has channels 0 and 2 in w[2t], 1 and
 * 3 in w[2t + 1] (the lanes SMLABB / SMLATT take); and the quad's bias plus the input offset
 * times the sum of its nine taps, which starts the sum of a window inside the image so that its
 * taps need not add the offset. Sums of int8 products far below 2^31: no overflow either way. */
typedef struct {
    int32_t w[18];
    int32_t b9[4];
} te_dw_w9_t;

static void te_dw_w9(const int8_t *filter, int32_t c_f, const te_dw_quad_t *d, int32_t off,
                     te_dw_w9_t *f)
{
    int32_t t, sum[4] = {0, 0, 0, 0};
    for (t = 0; t < 9; ++t) {
        const int8_t *w = filter + t * c_f;
        const uint32_t v = te_simd_load4(w);
        f->w[2 * t] = te_sxtb16(v);
        f->w[2 * t + 1] = te_sxtb16_r8(v);
        sum[0] += w[0];
        sum[1] += w[1];
        sum[2] += w[2];
        sum[3] += w[3];
    }
    f->b9[0] = d->b0 + off * sum[0];
    f->b9[1] = d->b1 + off * sum[1];
    f->b9[2] = d->b2 + off * sum[2];
    f->b9[3] = d->b3 + off * sum[3];
}

/** One tap of four channels: input word at pi (offset added by SXTAB16), filter words fw[0..1]. */
#define TE_DW_TAPW(pi, fw, off2, s0, s1, s2, s3)                                                \
    do {                                                                                        \
        const uint32_t x_ = te_simd_load4(pi);                                                  \
        const int32_t x_e = te_sxtab16(off2, x_), x_o = te_sxtab16_r8(off2, x_);                \
        const int32_t w_e = (fw)[0], w_o = (fw)[1];                                             \
        s0 = te_smlabb(x_e, w_e, s0);                                                           \
        s2 = te_smlatt(x_e, w_e, s2);                                                           \
        s1 = te_smlabb(x_o, w_o, s1);                                                           \
        s3 = te_smlatt(x_o, w_o, s3);                                                           \
    } while (0)

/** The quad's packed int8 outputs from its four sums (bias included). */
TE_SIMD_INLINE uint32_t te_dw_out4(int32_t s0, int32_t s1, int32_t s2, int32_t s3,
                                   const te_dw_quad_t *d, const te_simd_act_t *a)
{
    return te_clamp4(te_pack4(te_simd_requant(s0, d->q0), te_simd_requant(s1, d->q1),
                              te_simd_requant(s2, d->q2), te_simd_requant(s3, d->q3)),
                     a->lo4, a->hi4);
}

#if TE_SIMD_ASM
/* One tap of te_dw_pixel4_w9's assembly: the filter words at byte K of fw, the input word at
 * ADDR. */
#define TE_ASM_DW_TAP(ADDR, K)                                                                  \
    "ldrd %[we], %[wo], [%[fw], #" K "]\n\t"                                                     \
    "ldr %[x], " ADDR "\n\t"                                                                    \
    "sxtb16 %[xe], %[x]\n\t"                                                                     \
    "sxtb16 %[x], %[x], ror #8\n\t"                                                              \
    "smlabb %[s0], %[xe], %[we], %[s0]\n\t"                                                     \
    "smlatt %[s2], %[xe], %[we], %[s2]\n\t"                                                     \
    "smlabb %[s1], %[x], %[wo], %[s1]\n\t"                                                      \
    "smlatt %[s3], %[x], %[wo], %[s3]\n\t"
/* The nine taps, rows `row` apart, a row's three taps at A0, A1 and A2. */
#define TE_ASM_DW_9(A0, A1, A2)                                                                 \
    TE_ASM_DW_TAP(A0, "0") TE_ASM_DW_TAP(A1, "8") TE_ASM_DW_TAP(A2, "16")                       \
    "add %[in], %[in], %[row]\n\t"                                                              \
    TE_ASM_DW_TAP(A0, "24") TE_ASM_DW_TAP(A1, "32") TE_ASM_DW_TAP(A2, "40")                     \
    "add %[in], %[in], %[row]\n\t"                                                              \
    TE_ASM_DW_TAP(A0, "48") TE_ASM_DW_TAP(A1, "56") TE_ASM_DW_TAP(A2, "64")
#define TE_ASM_DW_OUTS                                                                          \
    [in] "+&r"(in), [s0] "+&r"(s0), [s1] "+&r"(s1), [s2] "+&r"(s2), [s3] "+&r"(s3),             \
        [x] "=&r"(x), [xe] "=&r"(xe), [we] "=&r"(we), [wo] "=&r"(wo)
#endif

/** A whole 3x3 window: in at its tap (0, 0), pixels ci apart, rows `row` apart. `packed` (a
 * constant): ci is 4, the pixels of a padded copy, and the assembly takes it as an offset,
 * which frees a register for the loop around it. */
TE_SIMD_INLINE uint32_t te_dw_pixel4_w9(const int8_t *in, int32_t ci, int32_t row, int packed,
                                        const te_dw_w9_t *f, const te_dw_quad_t *d,
                                        const te_simd_act_t *a)
{
    int32_t s0 = f->b9[0], s1 = f->b9[1], s2 = f->b9[2], s3 = f->b9[3];
#if TE_SIMD_ASM
    /* The taps of te_dw_pixel4_w9's C loop below, in its order: 13 values live where GCC,
     * allocating them itself, spills the pixel steps inside the window. */
    int32_t x, xe, we, wo;
    if (packed) {
        __asm__(TE_ASM_DW_9("[%[in]]", "[%[in], #4]", "[%[in], #8]")
                : TE_ASM_DW_OUTS
                : [row] "r"(row), [fw] "r"(f->w)
                : "memory");
    } else {
        __asm__(TE_ASM_DW_9("[%[in]]", "[%[in], %[ci]]", "[%[in], %[ci], lsl #1]")
                : TE_ASM_DW_OUTS
                : [ci] "r"(ci), [row] "r"(row), [fw] "r"(f->w)
                : "memory");
    }
#else
    const int32_t *fw = f->w;
    int32_t ky;
    if (packed) {
        ci = 4;
    }
    for (ky = 0; ky < 3; ++ky) {
        TE_DW_TAPW(in, fw, 0, s0, s1, s2, s3);
        TE_DW_TAPW(in + ci, fw + 2, 0, s0, s1, s2, s3);
        TE_DW_TAPW(in + 2 * ci, fw + 4, 0, s0, s1, s2, s3);
        in += row;
        fw += 6;
    }
#endif
    return te_dw_out4(s0, s1, s2, s3, d, a);
}
#if TE_SIMD_ASM
#undef TE_ASM_DW_OUTS
#undef TE_ASM_DW_9
#undef TE_ASM_DW_TAP
#endif

/** Output channel oc at pixel (row r, ox), requantised and clamped. */
static int8_t te_dw_pixel1(const te_depthwise_conv_params_t *p, const int8_t *input,
                           const int8_t *filter, const int32_t *bias, te_dw_row_t r, int32_t ox,
                           int32_t oc)
{
    const int32_t in_x0 = ox * p->stride_w - p->pad_w, c_in = p->input.c, c_f = p->filter.c;
    int32_t kx0, kx1, s = bias != NULL ? bias[oc] : 0;
    te_dw_valid(in_x0, p->dilation_w, p->input.w, p->filter.w, &kx0, &kx1);
    if (r.ny > 0 && kx1 > kx0) {
        const int32_t in_idx =
            r.in_row + (in_x0 + kx0 * p->dilation_w) * c_in + oc / p->depth_multiplier;
        const int32_t f_idx = (r.ky0 * p->filter.w + kx0) * c_f + oc;
        te_dw_steps_t st;
        st.in_dy = p->dilation_h * p->input.w * c_in;
        st.in_dx = p->dilation_w * c_in;
        st.f_dy = p->filter.w * c_f;
        st.f_dx = c_f;
        s = te_dw_acc1(input + in_idx, filter + f_idx, r.ny, kx1 - kx0, st, p->q.input_offset,
                       s);
    }
    return te_simd_out1(s, te_simd_rq_channel(&p->rq, oc, p->q.output_offset), p->q.act_min,
                        p->q.act_max);
}

/** Output channels below the returned bound (a multiple of 4) take the four-channel paths. */
static int32_t te_dw_simd_end(const te_depthwise_conv_params_t *p)
{
    const int32_t m = p->depth_multiplier;
    return (m == 1 || m % 4 == 0) ? p->output.c & ~3 : 0;
}

/** A window cut by the image's border: ny rows of nx taps, in at the first (input offset
 * added per tap), fw at its extended filter words. */
TE_SIMD_INLINE uint32_t te_dw_pixel4_rect(const int8_t *in, int32_t ci, int32_t row,
                                          const int32_t *fw, int32_t ny, int32_t nx,
                                          int32_t off2, const te_dw_quad_t *d,
                                          const te_simd_act_t *a)
{
    int32_t s0 = d->b0, s1 = d->b1, s2 = d->b2, s3 = d->b3, ky, kx;
    for (ky = ny; ky > 0; --ky) {
        const int8_t *pi = in;
        const int32_t *pf = fw;
        for (kx = nx; kx > 0; --kx) {
            TE_DW_TAPW(pi, pf, off2, s0, s1, s2, s3);
            pi += ci;
            pf += 2;
        }
        in += row;
        fw += 6;
    }
    return te_dw_out4(s0, s1, s2, s3, d, a);
}

/** What te_dw_border4 needs of an output row: passed by pointer, so a call costs little. */
typedef struct {
    const int8_t *input; /* at (image b, row of ky0, column 0, channel oc) */
    const int32_t *fw;   /* the extended filter at tap (ky0, 0) */
    const te_dw_quad_t *d;
    const te_simd_act_t *a;
    int32_t ny, ci, row, w_in, off2;
} te_dw_border_t;

/** The word of a window cut by the image's side columns (or rows), its left edge at input
 * column in_x0. Out of line: the interior loop keeps its registers. */
static uint32_t te_dw_border4(const te_dw_border_t *g, int32_t in_x0)
{
    const int32_t kx0 = in_x0 < 0 ? -in_x0 : 0;
    const int32_t kx1 = g->w_in - in_x0 < 3 ? g->w_in - in_x0 : 3;
    const int32_t nx = g->ny > 0 && kx1 > kx0 ? kx1 - kx0 : 0;
    return te_dw_pixel4_rect(nx > 0 ? g->input + (in_x0 + kx0) * g->ci : g->input, g->ci, g->row,
                             g->fw + 2 * kx0, g->ny, nx, g->off2, g->d, g->a);
}

/** Output row oy of image b, channels oc..oc+3, of a te_dw_fast3 layer with multiplier 1:
 * pixel ox's word goes to dst + ox * dst_step. [lo, hi): te_dw_interior_x. */
static void te_dw_row4_w9(const te_depthwise_conv_params_t *p, const int8_t *input, int32_t b,
                          int32_t oy, int32_t oc, const te_dw_w9_t *f, const te_dw_quad_t *d,
                          const te_simd_act_t *a, int32_t lo, int32_t hi, int8_t *dst,
                          int32_t dst_step)
{
    const int32_t ci = p->input.c, row = p->input.w * ci, sw = p->stride_w;
    const te_dw_row_t r = te_dw_row(p, b, oy);
    te_dw_border_t g;
    int32_t ox = 0;
    g.input = r.ny > 0 ? input + r.in_row + oc : input;
    g.fw = f->w + 6 * r.ky0;
    g.d = d;
    g.a = a;
    g.ny = r.ny;
    g.ci = ci;
    g.row = row;
    g.w_in = p->input.w;
    g.off2 = te_simd_dup16(p->q.input_offset);
    if (r.ny == 3 && lo < hi) {
        const int8_t *in = g.input + (lo * sw - p->pad_w) * ci;
        for (; ox < lo; ++ox) {
            te_simd_store4(dst, te_dw_border4(&g, ox * sw - p->pad_w));
            dst += dst_step;
        }
        for (; ox < hi; ++ox) {
            te_simd_store4(dst, te_dw_pixel4_w9(in, ci, row, 0, f, d, a));
            in += sw * ci;
            dst += dst_step;
        }
    }
    for (; ox < p->output.w; ++ox) {
        te_simd_store4(dst, te_dw_border4(&g, ox * sw - p->pad_w));
        dst += dst_step;
    }
}

/** The w9 path's channel quads for a te_dw_fast3 layer with multiplier 1. */
static void te_depthwise_simd_w9(const te_depthwise_conv_params_t *p, const int8_t *input,
                                 const int8_t *filter, const int32_t *bias, int8_t *output)
{
    const te_simd_act_t a = te_simd_act(&p->q);
    const int32_t c_n = p->output.c, row = p->output.w * c_n;
    int32_t oc, b, oy, lo, hi;
    te_dw_interior_x(p, &lo, &hi);
    for (oc = 0; oc < (c_n & ~3); oc += 4) {
        const te_dw_quad_t d = te_dw_quad(p, bias, oc);
        te_dw_w9_t f;
        te_dw_w9(filter + oc, c_n, &d, p->q.input_offset, &f);
        for (b = 0; b < p->output.n; ++b) {
            for (oy = 0; oy < p->output.h; ++oy) {
                te_dw_row4_w9(p, input, b, oy, oc, &f, &d, &a, lo, hi,
                              output + (b * p->output.h + oy) * row + oc, c_n);
            }
        }
    }
}

/* ---- one input channel, a multiplier of 4: two output pixels per input word -----------------
 *
 * A depthwise layer over one input channel (micro_speech's 49x40x1 -> 25x20x8, 10x8 window,
 * stride 2) reads the taps of a window row as consecutive input bytes. One word of them,
 * x[a + k .. a + k + 3], sign-extended by SXTAB16 (which adds the input offset) gives
 * (x[a + k], x[a + k + 2]): tap k of the window starting at column a and of the one starting at
 * a + 2 (the next pixel at stride 2, the one after it at stride 1); the ROR #8 form gives tap
 * k + 1 of both. So each filter word (four output channels of one tap) is sign-extended once for
 * two pixels: per tap 1.5 instructions of input, 3 of filter and 8 MACs for 8 products, where
 * te_dw_acc4 spends 12 on 4. Near the left and right border the two windows keep different
 * columns: the pair takes the columns both keep, and the one or two columns only one of them
 * keeps go through te_dw_acc4. Every read stays inside the image.
 */

/** Whether te_depthwise_simd_pairs takes the layer: one input channel, a depth multiplier that
 * is a multiple of 4, dilation 1 along x and stride 1 or 2 along x; not a te_dw_fast3 window,
 * whose unrolled taps cost less than the pair loop's per-row overhead on 3 taps (person_detect's
 * 96x96x1 -> 48x48x8 stride-2 3x3: 760k instructions unrolled, 1006k in pairs, cortex-m4 -O2;
 * a 4x4 or 3x5 window is 1.2x faster in pairs). */
static int te_dw_pairs_c1(const te_depthwise_conv_params_t *p)
{
    return p->input.c == 1 && p->depth_multiplier % 4 == 0 && p->dilation_w == 1 &&
           (p->stride_w == 1 || p->stride_w == 2) && !te_dw_fast3(p);
}

/** Tap k of pixels A and B (x: their offset inputs as two int16 lanes) for the four channels
 * whose filter values are the word at pf; a0..a3 and b0..b3 are A's and B's sums. */
#define TE_DW_PAIR_TAP(xv, pf)                                                                  \
    do {                                                                                        \
        const int32_t x_ = (xv);                                                                \
        const uint32_t w_ = te_simd_load4(pf);                                                  \
        const int32_t we_ = te_sxtb16(w_), wo_ = te_sxtb16_r8(w_);                              \
        a0 = te_smlabb(we_, x_, a0);                                                            \
        b0 = te_smlatb(x_, we_, b0);                                                            \
        a2 = te_smlatb(we_, x_, a2);                                                            \
        b2 = te_smlatt(we_, x_, b2);                                                            \
        a1 = te_smlabb(wo_, x_, a1);                                                            \
        b1 = te_smlatb(x_, wo_, b1);                                                            \
        a3 = te_smlatb(wo_, x_, a3);                                                            \
        b3 = te_smlatt(wo_, x_, b3);                                                            \
    } while (0)

/** Adds to s[0..3] (pixel A, its first tap at `in`) and s[4..7] (pixel B, two columns on) the
 * products of nx >= 2 taps per row over ny rows (input rows in_dy apart, filter rows f_dy),
 * four channels whose filter starts at f (taps cf apart). Reads the two windows' bytes only. */
TE_SIMD_INLINE void te_dw_pair_rows(const int8_t *in, const int8_t *f, int32_t ny, int32_t nx,
                                    int32_t in_dy, int32_t f_dy, int32_t cf, int32_t off2,
                                    int32_t s[8])
{
    int32_t a0 = s[0], a1 = s[1], a2 = s[2], a3 = s[3];
    int32_t b0 = s[4], b1 = s[5], b2 = s[6], b3 = s[7];
    const int32_t cf2 = 2 * cf;
    int32_t ky, kx;
    for (ky = ny; ky > 0; --ky) {
        const int8_t *pi = in, *pf = f;
        for (kx = nx >> 1; kx > 0; --kx) {
            const uint32_t x = te_simd_load4(pi);
            TE_DW_PAIR_TAP(te_sxtab16(off2, x), pf);
            TE_DW_PAIR_TAP(te_sxtab16_r8(off2, x), pf + cf);
            pi += 2;
            pf += cf2;
        }
        if (nx & 1) { /* the last tap: bytes 1 and 3 of the word one back (nx >= 3 here) */
            TE_DW_PAIR_TAP(te_sxtab16_r8(off2, te_simd_load4(pi - 1)), pf);
        }
        in += in_dy;
        f += f_dy;
    }
    s[0] = a0;
    s[1] = a1;
    s[2] = a2;
    s[3] = a3;
    s[4] = b0;
    s[5] = b1;
    s[6] = b2;
    s[7] = b3;
}
#undef TE_DW_PAIR_TAP

/** Valid taps [k0, k1) of a window whose tap 0 is at input column x0 (dilation 1). */
TE_SIMD_INLINE void te_dw_cols(int32_t x0, int32_t taps, int32_t w, int32_t *k0, int32_t *k1)
{
    *k0 = x0 < 0 ? -x0 : 0;
    *k1 = w - x0 < taps ? w - x0 : taps;
    if (*k1 < *k0) {
        *k1 = *k0;
    }
}

/** Output pixels ox and ox + span of output row r (channels oc..oc+3) of a te_dw_pairs_c1
 * layer, stored at out + ox * c and out + (ox + span) * c. Returns 0, storing nothing, where
 * fewer than 2 columns are inside both windows. */
static int te_dw_pair4(const te_depthwise_conv_params_t *p, const int8_t *input,
                       const int8_t *filter, te_dw_row_t r, int32_t ox, int32_t span,
                       int32_t oc, const te_dw_quad_t *d, const te_simd_act_t *a, int32_t off2,
                       int8_t *out)
{
    const int32_t fw = p->filter.w, c = p->output.c, x0 = ox * p->stride_w - p->pad_w;
    const int32_t in_dy = p->dilation_h * p->input.w, f_dy = fw * c;
    int32_t a0, a1, b0, b1, s[8];
    const int8_t *in = input + r.in_row + x0, *f = filter + r.ky0 * f_dy + oc;
    te_dw_cols(x0, fw, p->input.w, &a0, &a1);
    te_dw_cols(x0 + 2, fw, p->input.w, &b0, &b1);
    /* A keeps taps [a0, a1), B [b0, b1), with b0 <= a0 and b1 <= a1: both keep [a0, b1). */
    if (b1 - a0 < 2) {
        return 0;
    }
    s[0] = s[4] = d->b0;
    s[1] = s[5] = d->b1;
    s[2] = s[6] = d->b2;
    s[3] = s[7] = d->b3;
    if (r.ny > 0) {
        te_dw_steps_t st;
        st.in_dy = in_dy;
        st.in_dx = 1;
        st.f_dy = f_dy;
        st.f_dx = c;
        te_dw_pair_rows(in + a0, f + a0 * c, r.ny, b1 - a0, in_dy, f_dy, c, off2, s);
        if (b0 < a0) { /* columns only B's window keeps, on the left */
            te_dw_acc4(in + 2 + b0, f + b0 * c, r.ny, a0 - b0, st, 1, off2, s + 4);
        }
        if (b1 < a1) { /* columns only A's window keeps, on the right */
            te_dw_acc4(in + b1, f + b1 * c, r.ny, a1 - b1, st, 1, off2, s);
        }
    }
    te_simd_store4(out + ox * c, te_dw_out4(s[0], s[1], s[2], s[3], d, a));
    te_simd_store4(out + (ox + span) * c, te_dw_out4(s[4], s[5], s[6], s[7], d, a));
    return 1;
}

/** Depthwise convolution of a te_dw_pairs_c1 layer, every channel: pixels ox and ox + span
 * (span = 2 / stride) together, in blocks of 2 * span columns; a pixel left over, or a pair with
 * fewer than two columns in common, one at a time. */
static void te_depthwise_simd_pairs(const te_depthwise_conv_params_t *p, const int8_t *input,
                                    const int8_t *filter, const int32_t *bias, int8_t *output)
{
    const te_simd_act_t a = te_simd_act(&p->q);
    const int32_t off2 = te_simd_dup16(p->q.input_offset);
    const int32_t oc_n = p->output.c, ow = p->output.w, span = 2 / p->stride_w;
    int32_t oc, b, oy, ox, j;
    for (oc = 0; oc < oc_n; oc += 4) {
        const te_dw_quad_t d = te_dw_quad(p, bias, oc);
        for (b = 0; b < p->output.n; ++b) {
            for (oy = 0; oy < p->output.h; ++oy) {
                const te_dw_row_t r = te_dw_row(p, b, oy);
                int8_t *out = output + (b * p->output.h + oy) * ow * oc_n + oc;
                for (ox = 0; ox + 2 * span <= ow; ox += 2 * span) {
                    for (j = ox; j < ox + span; ++j) {
                        if (!te_dw_pair4(p, input, filter, r, j, span, oc, &d, &a, off2, out)) {
                            te_simd_store4(out + j * oc_n, te_dw_pixel4(p, input, filter, r, j,
                                                                        oc, 1, &d, &a, off2));
                            te_simd_store4(out + (j + span) * oc_n,
                                           te_dw_pixel4(p, input, filter, r, j + span, oc, 1,
                                                        &d, &a, off2));
                        }
                    }
                }
                for (; ox < ow; ++ox) {
                    te_simd_store4(out + ox * oc_n,
                                   te_dw_pixel4(p, input, filter, r, ox, oc, 1, &d, &a, off2));
                }
            }
        }
    }
}

/* ---- the out-of-place SIMD paths ------------------------------------------------------------
 *
 * Each path is a static function here and a public entry point further down
 * (te_depthwise_conv_<path>_s8), so that a model links the paths its layers take and no other:
 * the code generator picks the path from the layer's shapes and constants
 * (tinyengine/ops/depthwise.py, simd_path), te_depthwise_path_s8 by the same rule at run time.
 */

/** Output channels oc0 and up, one at a time: multipliers that are neither 1 nor a multiple of
 * 4, and the channels left over after the quads. */
static void te_depthwise_simd_ones(const te_depthwise_conv_params_t *p, const int8_t *input,
                                   const int8_t *filter, const int32_t *bias, int8_t *output,
                                   int32_t oc0)
{
    const int32_t oc_n = p->output.c;
    int32_t oc, b, oy, ox;
    for (oc = oc0; oc < oc_n; ++oc) {
        int8_t *out = output + oc;
        for (b = 0; b < p->output.n; ++b) {
            for (oy = 0; oy < p->output.h; ++oy) {
                const te_dw_row_t r = te_dw_row(p, b, oy);
                for (ox = 0; ox < p->output.w; ++ox) {
                    *out = te_dw_pixel1(p, input, filter, bias, r, ox, oc);
                    out += oc_n;
                }
            }
        }
    }
}

/** The w9 path (a te_dw_fast3 window, multiplier 1): the quads through the widened filter, the
 * channels left over one at a time. */
static void te_depthwise_simd_w9_all(const te_depthwise_conv_params_t *p, const int8_t *input,
                                     const int8_t *filter, const int32_t *bias, int8_t *output)
{
    te_depthwise_simd_w9(p, input, filter, bias, output);
    te_depthwise_simd_ones(p, input, filter, bias, output, p->output.c & ~3);
}

/** The quads path, any geometry: channel groups of four outside, pixels inside (a 3x3 window
 * inside the image unrolled), then the channels left over one at a time. */
static void te_depthwise_simd_quads(const te_depthwise_conv_params_t *p, const int8_t *input,
                                    const int8_t *filter, const int32_t *bias, int8_t *output)
{
    const te_simd_act_t a = te_simd_act(&p->q);
    const int32_t off2 = te_simd_dup16(p->q.input_offset);
    const int32_t oc_n = p->output.c, simd_end = te_dw_simd_end(p);
    const int bcast = p->depth_multiplier != 1;
    int32_t oc, b, oy, ox;
    const int fast3 = te_dw_fast3(p);
    const int32_t row = p->input.w * p->input.c, step = p->stride_w * p->input.c;
    int32_t lo, hi;
    te_dw_interior_x(p, &lo, &hi);
    for (oc = 0; oc < simd_end; oc += 4) {
        const te_dw_quad_t d = te_dw_quad(p, bias, oc);
        int8_t *out = output + oc;
        for (b = 0; b < p->output.n; ++b) {
            for (oy = 0; oy < p->output.h; ++oy) {
                const te_dw_row_t r = te_dw_row(p, b, oy);
                const int interior = fast3 && r.ny == 3;
                for (ox = 0; ox < p->output.w; ++ox) {
                    uint32_t v;
                    if (interior && ox >= lo && ox < hi) {
                        const int8_t *in = input + r.in_row + (ox * p->stride_w - p->pad_w) *
                                                                  p->input.c +
                                           (bcast ? oc / p->depth_multiplier : oc);
                        /* Columns lo..hi-1 in one go, the input a stride apart. */
                        for (; ox < hi; ++ox) {
                            v = bcast ? te_dw_pixel4_3x3(in, filter + oc, p->input.c, oc_n, row,
                                                         1, &d, &a, off2)
                                      : te_dw_pixel4_3x3(in, filter + oc, p->input.c, oc_n, row,
                                                         0, &d, &a, off2);
                            te_simd_store4(out, v);
                            in += step;
                            out += oc_n;
                        }
                        --ox;
                        continue;
                    }
                    v = bcast ? te_dw_pixel4(p, input, filter, r, ox, oc, 1, &d, &a, off2)
                              : te_dw_pixel4(p, input, filter, r, ox, oc, 0, &d, &a, off2);
                    te_simd_store4(out, v);
                    out += oc_n;
                }
            }
        }
    }
    te_depthwise_simd_ones(p, input, filter, bias, output, simd_end);
}

/**
 * In-place depthwise convolution on a small plane (te_dw_small_pixels's domain), channels below
 * c_end (a multiple of 4). For each block of four channels the whole input plane is copied into
 * scratch as one word per pixel, inside a one-pixel border holding the input's zero point (its
 * taps add (zp + input_offset) * f = 0, so the sums are the unpadded ones); every output pixel
 * is then an interior 3x3 window of the copy and is written straight to the output, whose block
 * has been read already. Scratch: 4 * (h + 2) * (w + 2) bytes.
 */
static TE_SIMD_NOINLINE void
te_depthwise_inplace_small_simd(const te_depthwise_conv_params_t *p, const int8_t *input,
                                const int8_t *filter, const int32_t *bias, int8_t *output,
                                int8_t *scratch, int32_t c_end)
{
    const te_simd_act_t a = te_simd_act(&p->q);
    const int32_t off2 = te_simd_dup16(p->q.input_offset);
    const int32_t h = p->output.h, w = p->output.w, c_n = p->output.c, plane = h * w;
    const int32_t cols = w + 2, row = 4 * cols;
    const uint32_t pad4 = (uint32_t)(uint8_t)(int8_t)(-p->q.input_offset) * 0x01010101u;
    int32_t c, b, y, x;
    /* The border is the same for every block: written once. */
    for (x = 0; x < cols; ++x) {
        te_simd_store4(scratch + 4 * x, pad4);
        te_simd_store4(scratch + 4 * ((h + 1) * cols + x), pad4);
    }
    for (y = 1; y <= h; ++y) {
        te_simd_store4(scratch + y * row, pad4);
        te_simd_store4(scratch + y * row + 4 * (w + 1), pad4);
    }
    for (c = 0; c < c_end; c += 4) {
        const te_dw_quad_t d = te_dw_quad(p, bias, c);
        for (b = 0; b < p->output.n; ++b) {
            const int8_t *in = input + b * plane * c_n + c;
            int8_t *out = output + b * plane * c_n + c;
            for (y = 1; y <= h; ++y) {
                int8_t *dst = scratch + y * row + 4;
                for (x = 0; x < w; ++x) {
                    te_simd_store4(dst, te_simd_load4(in));
                    dst += 4;
                    in += c_n;
                }
            }
            for (y = 0; y < h; ++y) {
                const int8_t *win = scratch + y * row;
                for (x = 0; x < w; ++x) {
                    te_simd_store4(out, te_dw_pixel4_3x3(win, filter + c, 4, c_n, row, 0, &d, &a,
                                                         off2));
                    win += 4;
                    out += c_n;
                }
            }
        }
    }
}

/**
 * Whether te_depthwise_inplace_rows_simd takes the in-place layer: a te_dw_fast3 window, stride
 * 1, at most one padding row above, no small-plane copy, and two rows of four channels
 * (8 * w bytes) inside the one-plane scratch.
 */
static int te_dw_inplace_rows(const te_depthwise_conv_params_t *p)
{
    return te_dw_fast3(p) && p->stride_h == 1 && p->stride_w == 1 && p->pad_h <= 1 &&
           p->output.c >= 4 && 8 * p->output.w <= p->output.h * p->output.w &&
           te_dw_small_pixels(p) == 0;
}

/**
 * In-place 3x3 depthwise convolution, four channels at a time, a row at a time: output row oy
 * reads input rows oy - 1 .. oy + 1 only, so once it is computed (into one half of the
 * scratch), output row oy - 1 (in the other half) can overwrite input row oy - 1, which no
 * later row reads. Channels c_n & ~3 and up are left to the caller.
 */
static void te_depthwise_inplace_rows_simd(const te_depthwise_conv_params_t *p,
                                           const int8_t *input, const int8_t *filter,
                                           const int32_t *bias, int8_t *output, int8_t *scratch)
{
    const te_simd_act_t a = te_simd_act(&p->q);
    const int32_t c_n = p->output.c, w = p->output.w, h = p->output.h, row = w * c_n;
    int32_t c, b, oy, ox, lo, hi;
    te_dw_interior_x(p, &lo, &hi);
    for (c = 0; c < (c_n & ~3); c += 4) {
        const te_dw_quad_t d = te_dw_quad(p, bias, c);
        te_dw_w9_t f;
        te_dw_w9(filter + c, c_n, &d, p->q.input_offset, &f);
        for (b = 0; b < p->output.n; ++b) {
            int8_t *out = output + b * h * row + c;
            for (oy = 0; oy <= h; ++oy) {
                if (oy < h) {
                    te_dw_row4_w9(p, input, b, oy, c, &f, &d, &a, lo, hi,
                                  scratch + 4 * w * (oy & 1), 4);
                }
                if (oy > 0) { /* output row oy - 1 over input row oy - 1 */
                    const int8_t *src = scratch + 4 * w * ((oy - 1) & 1);
                    int8_t *dst = out + (oy - 1) * row;
                    for (ox = 0; ox < w; ++ox) {
                        te_simd_store4(dst, te_simd_load4(src));
                        src += 4;
                        dst += c_n;
                    }
                }
            }
        }
    }
}

/* ---- in place through a ring of three padded input rows -------------------------------------
 *
 * On a narrow plane most 3x3 windows are cut by the left or right side (kws's 25x5: 56 of 125
 * per channel quad), and a cut window takes te_dw_border4's loop over its taps at about twice
 * the instructions of the unrolled interior window. Here the quad's input rows oy - 1 .. oy + 1
 * are copied into scratch with a word of the input's zero point before, between and after
 * them, and the rows above and below the image are zero-point words too: a zero-point tap adds
 * (zp + input_offset) * f = 0 to a sum that te_dw_w9 starts with the offset of all nine taps,
 * so every window is an interior one of the copy (te_dw_pixel4_w9). Output row oy then goes
 * straight over input row oy, whose copy is held; the copy of row oy + 1 takes the ring slot of
 * row oy - 2. The slots stay in place and the filter's rows turn instead: with the window's
 * first row in slot j, slot k holds kernel row (k - j) mod 3, one of three tables per quad.
 */

/** Scratch bytes of the ring: three rows of w words and four zero-point words around them. */
static int32_t te_dw_ring_bytes(int32_t w)
{
    return 4 * (3 * w + 4);
}

/**
 * Whether te_depthwise_inplace_ring3_simd takes the in-place layer: a te_dw_fast3 window,
 * stride 1, padding 1 on each side, at least 4 channels, the input's zero point an int8 (the
 * padding holds it), no small-plane copy, and the ring inside the one-plane scratch.
 */
static int te_dw_inplace_ring3(const te_depthwise_conv_params_t *p)
{
    return te_dw_fast3(p) && p->stride_h == 1 && p->stride_w == 1 && p->pad_h == 1 &&
           p->pad_w == 1 && p->output.c >= 4 && p->q.input_offset >= -127 &&
           p->q.input_offset <= 128 && te_dw_small_pixels(p) == 0 &&
           te_dw_ring_bytes(p->output.w) <= p->output.h * p->output.w;
}

/** dst = src with its filter rows turned one slot on: dst's row k is src's row (k + 2) mod 3. */
static void te_dw_w9_turn(const te_dw_w9_t *src, te_dw_w9_t *dst)
{
    int32_t k, t;
    for (k = 0; k < 3; ++k) {
        const int32_t from = k == 0 ? 2 : k - 1;
        for (t = 0; t < 6; ++t) {
            dst->w[6 * k + t] = src->w[6 * from + t];
        }
    }
    for (t = 0; t < 4; ++t) {
        dst->b9[t] = src->b9[t];
    }
}

/** Input row `in` (four channels of w pixels, c_n apart) into the ring row at dst, or the
 * zero point where in is NULL (the rows above and below the image). */
static void te_dw_ring_fill(int8_t *dst, const int8_t *in, int32_t w, int32_t c_n,
                            uint32_t pad4)
{
    int32_t x;
    if (in == NULL) {
        for (x = 0; x < w; ++x) {
            te_simd_store4(dst + 4 * x, pad4);
        }
        return;
    }
    for (x = 0; x < w; ++x) {
        te_simd_store4(dst + 4 * x, te_simd_load4(in));
        in += c_n;
    }
}

/** One output row of four channels from the ring (its first row at `ring`, the next `slot`
 * bytes on), pixel by pixel into dst .. end, c_n apart. Out of line: with only the pixel loop's
 * values live, GCC -Os keeps them in registers around the window's assembly. */
static TE_SIMD_NOINLINE void te_dw_ring_row4(const int8_t *ring, int32_t slot,
                                             const te_dw_w9_t *f, const te_dw_quad_t *d,
                                             const te_simd_act_t *a, int8_t *dst,
                                             const int8_t *end, int32_t c_n)
{
    do {
        te_simd_store4(dst, te_dw_pixel4_w9(ring, 4, slot, 1, f, d, a));
        ring += 4;
        dst += c_n;
    } while (dst != end);
}

/**
 * In-place 3x3 depthwise convolution through the ring of padded rows above (domain:
 * te_dw_inplace_ring3), channels below c_n & ~3; the others are left to the caller.
 * Scratch: te_dw_ring_bytes(w).
 */
static TE_SIMD_NOINLINE void
te_depthwise_inplace_ring3_simd(const te_depthwise_conv_params_t *p, const int8_t *input,
                                const int8_t *filter, const int32_t *bias, int8_t *output,
                                int8_t *scratch)
{
    const te_simd_act_t a = te_simd_act(&p->q);
    const int32_t c_n = p->output.c, w = p->output.w, h = p->output.h, row = w * c_n;
    const int32_t slot = 4 * (w + 1); /* from one ring row to the next, their pad word shared */
    const uint32_t pad4 = (uint32_t)(uint8_t)(int8_t)(-p->q.input_offset) * 0x01010101u;
    int8_t *const rows = scratch + 4; /* slot 0's first pixel */
    int32_t c, b, oy, k;
    for (k = 0; k < 4; ++k) { /* the side padding, the same for every quad */
        te_simd_store4(scratch + k * slot, pad4);
    }
    for (c = 0; c < (c_n & ~3); c += 4) {
        const te_dw_quad_t d = te_dw_quad(p, bias, c);
        te_dw_w9_t f[3]; /* f[j]: the window's first row in slot j */
        te_dw_w9(filter + c, c_n, &d, p->q.input_offset, &f[0]);
        te_dw_w9_turn(&f[0], &f[1]);
        te_dw_w9_turn(&f[1], &f[2]);
        for (b = 0; b < p->output.n; ++b) {
            const int8_t *in = input + b * h * row + c;
            int8_t *out = output + b * h * row + c;
            int32_t next = 1; /* the slot of input row oy + 1; the window starts one after */
            te_dw_ring_fill(rows + 2 * slot, NULL, w, c_n, pad4);
            te_dw_ring_fill(rows, in, w, c_n, pad4);
            for (oy = 0; oy < h; ++oy) {
                const te_dw_w9_t *fj = &f[next == 2 ? 0 : next + 1];
                int8_t *dst = out + oy * row;
                te_dw_ring_fill(rows + next * slot, oy + 1 < h ? in + (oy + 1) * row : NULL, w,
                                c_n, pad4);
                te_dw_ring_row4(scratch, slot, fj, &d, &a, dst, dst + row, c_n);
                next = next == 2 ? 0 : next + 1;
            }
        }
    }
}

/* ---- the in-place SIMD paths ----------------------------------------------------------------
 *
 * Depth multiplier 1, output shape = input shape. Four channels at a time by one of: the ring of
 * three padded input rows (te_depthwise_inplace_ring3_simd, when it fits the plane), else a row
 * at a time (te_depthwise_inplace_rows_simd, h >= 8), else on a plane too small for the ring of
 * delayed outputs below the small-plane path (te_depthwise_inplace_small_simd, for which the
 * scratch is larger), else that ring of delayed outputs (te_depthwise_inplace_ring_simd).
 * Channels left over, and layers none of these takes, go one channel at a time through the
 * plane (te_depthwise_inplace_plane_simd) as in the portable path. te_depthwise_path_s8 orders
 * them; each is a public entry point of its own (te_depthwise_conv_inplace_<path>_s8).
 */

/** Whether the ring of delayed output pixels takes the in-place layer: stride 1, at least 4
 * channels, and a ring of L = pad_h * w + pad_w + 1 pixels of four channels inside the
 * one-plane scratch (4 L <= h * w). */
static int te_dw_inplace_ring(const te_depthwise_conv_params_t *p)
{
    const int32_t ring = p->pad_h * p->output.w + p->pad_w + 1;
    return p->stride_h == 1 && p->stride_w == 1 && p->output.c >= 4 &&
           4 * ring <= p->output.h * p->output.w;
}

/**
 * In-place depthwise convolution through a ring of delayed output pixels, channels below
 * c_n & ~3 (domain: te_dw_inplace_ring). With stride 1, output pixel k (raster order over n, h,
 * w) reads input pixels up to k + pad_h * w + pad_w only, so once pixels up to k - 1 are
 * computed, input pixel k - L with L = pad_h * w + pad_w + 1 has no reader left and its four
 * channels can take their outputs, freeing the ring slot pixel k needs. The ring holds L pixels
 * of 4 channels: 4 L bytes of the one-plane scratch.
 */
static void te_depthwise_inplace_ring_simd(const te_depthwise_conv_params_t *p,
                                           const int8_t *input, const int8_t *filter,
                                           const int32_t *bias, int8_t *output, int8_t *scratch)
{
    const te_simd_act_t a = te_simd_act(&p->q);
    const int32_t off2 = te_simd_dup16(p->q.input_offset);
    const int32_t c_n = p->output.c;
    const int32_t ring = p->pad_h * p->output.w + p->pad_w + 1;
    const int fast3 = te_dw_fast3(p);
    const int32_t row = p->input.w * c_n;
    int32_t c, b, oy, ox, px, lo, hi;
    te_dw_interior_x(p, &lo, &hi);
    for (c = 0; c < (c_n & ~3); c += 4) {
        const te_dw_quad_t d = te_dw_quad(p, bias, c);
        int32_t k = 0, slot = 0; /* pixel k goes to ring slot k % L */
        for (b = 0; b < p->output.n; ++b) {
            for (oy = 0; oy < p->output.h; ++oy) {
                const te_dw_row_t r = te_dw_row(p, b, oy);
                const int interior = fast3 && r.ny == 3;
                const int8_t *in = interior && lo < hi
                                       ? input + r.in_row + (lo - p->pad_w) * c_n + c
                                       : input;
                for (ox = 0; ox < p->output.w; ++ox) {
                    uint32_t v;
                    if (k >= ring) {
                        te_simd_store4(output + (k - ring) * c_n + c,
                                       te_simd_load4(scratch + 4 * slot));
                    }
                    if (interior && ox >= lo && ox < hi) {
                        v = te_dw_pixel4_3x3(in, filter + c, c_n, c_n, row, 0, &d, &a, off2);
                        in += c_n;
                    } else {
                        v = te_dw_pixel4(p, input, filter, r, ox, c, 0, &d, &a, off2);
                    }
                    te_simd_store4(scratch + 4 * slot, v);
                    ++k;
                    if (++slot == ring) {
                        slot = 0;
                    }
                }
            }
        }
        for (px = k > ring ? k - ring : 0; px < k; ++px) { /* the last L pixels */
            te_simd_store4(output + px * c_n + c, te_simd_load4(scratch + 4 * (px % ring)));
        }
    }
}

/** In-place channels c0 and up, one at a time: channel c is computed whole into the one-plane
 * scratch from input channel c only, then written over it. */
static void te_depthwise_inplace_plane_simd(const te_depthwise_conv_params_t *p,
                                            const int8_t *input, const int8_t *filter,
                                            const int32_t *bias, int8_t *output,
                                            int8_t *scratch, int32_t c0)
{
    const int32_t c_n = p->output.c, plane = p->output.h * p->output.w;
    int32_t c, b, oy, ox, px;
    for (c = c0; c < c_n; ++c) {
        for (b = 0; b < p->output.n; ++b) {
            for (oy = 0; oy < p->output.h; ++oy) {
                const te_dw_row_t r = te_dw_row(p, b, oy);
                for (ox = 0; ox < p->output.w; ++ox) {
                    scratch[oy * p->output.w + ox] =
                        te_dw_pixel1(p, input, filter, bias, r, ox, c);
                }
            }
            for (px = 0; px < plane; ++px) {
                output[(b * plane + px) * c_n + c] = scratch[px];
            }
        }
    }
}
#endif /* TE_SIMD */

/** Output (b, oy, ox, oc) by TFLite's reference loop: the portable kernel, and the
 * recomputation of the channels outside the SIMD requantisation's domain. */
static int8_t te_dw_value(const te_depthwise_conv_params_t *p, const int8_t *input,
                          const int8_t *filter, const int32_t *bias, int32_t b, int32_t oy,
                          int32_t ox, int32_t oc)
{
    const int32_t in_y0 = oy * p->stride_h - p->pad_h, in_x0 = ox * p->stride_w - p->pad_w;
    /* No division where the multiplier is 1: ARMv6-M has no divide instruction. */
    const int32_t ic = p->depth_multiplier == 1 ? oc : oc / p->depth_multiplier;
    int32_t ky, kx, acc = 0;
    for (ky = 0; ky < p->filter.h; ++ky) {
        const int32_t in_y = in_y0 + ky * p->dilation_h;
        if (in_y < 0 || in_y >= p->input.h) {
            continue;
        }
        for (kx = 0; kx < p->filter.w; ++kx) {
            const int32_t in_x = in_x0 + kx * p->dilation_w;
            if (in_x < 0 || in_x >= p->input.w) {
                continue;
            }
            acc += (int32_t)filter[(ky * p->filter.w + kx) * p->filter.c + oc] *
                   ((int32_t)input[((b * p->input.h + in_y) * p->input.w + in_x) * p->input.c +
                                   ic] + p->q.input_offset);
        }
    }
    if (bias != NULL) {
        acc += bias[oc];
    }
    acc = te_requantize(&p->rq, oc, acc) + p->q.output_offset;
    return (int8_t)te_clamp(acc, p->q.act_min, p->q.act_max);
}

/* The 3x3 kernel's domain (its own check refuses anything else). */
static int te_dw_is_3x3(const te_depthwise_conv_params_t *p)
{
    return p->depth_multiplier == 1 && p->filter.h == 3 && p->filter.w == 3 &&
           p->dilation_h == 1 && p->dilation_w == 1 && p->pad_h >= 0 && p->pad_h <= 1 &&
           p->pad_w >= 0 && p->pad_w <= 1;
}

/* What every in-place entry point checks: the arguments, the in-place domain (depth multiplier
 * 1, output shape = input shape) and the scratch. */
static te_status_t te_dw_inplace_check(const te_depthwise_conv_params_t *p, const int8_t *input,
                                       const int8_t *filter, const int8_t *output,
                                       const int8_t *scratch)
{
    const te_status_t st = te_depthwise_conv_check(p, input, filter, output);
    if (st != TE_OK) {
        return st;
    }
    if (p->depth_multiplier != 1 || p->input.h != p->output.h || p->input.w != p->output.w ||
        p->input.c != p->output.c) {
        return TE_ERR_ARG;
    }
    return scratch == NULL ? TE_ERR_SCRATCH : TE_OK;
}

/* ---- the portable loops: every build has them --------------------------------------------- */

te_status_t te_depthwise_conv_portable_s8(const te_depthwise_conv_params_t *p,
                                          const int8_t *input, const int8_t *filter,
                                          const int32_t *bias, int8_t *output)
{
    int32_t b, oy, ox, oc;
    const te_status_t st = te_depthwise_conv_check(p, input, filter, output);
    if (st != TE_OK) {
        return st;
    }
    for (b = 0; b < p->output.n; ++b) {
        for (oy = 0; oy < p->output.h; ++oy) {
            for (ox = 0; ox < p->output.w; ++ox) {
                for (oc = 0; oc < p->output.c; ++oc) {
                    output[((b * p->output.h + oy) * p->output.w + ox) * p->output.c + oc] =
                        te_dw_value(p, input, filter, bias, b, oy, ox, oc);
                }
            }
        }
    }
    return TE_OK;
}

te_status_t te_depthwise_conv_3x3_portable_s8(const te_depthwise_conv_params_t *p,
                                              const int8_t *input, const int8_t *filter,
                                              const int32_t *bias, int8_t *output)
{
    int32_t b, oy, ox, c, ky, kx, channels, row_stride;
    const te_status_t st = te_depthwise_conv_check(p, input, filter, output);
    if (st != TE_OK) {
        return st;
    }
    if (!te_dw_is_3x3(p)) {
        return TE_ERR_ARG;
    }
    channels = p->input.c;
    row_stride = p->input.w * channels;
    /* With multiplier 1 and dilation 1 the taps that fall inside the image form one rectangle
     * [ky0, ky1) x [kx0, kx1) per output pixel, so the bounds checks leave the channel loop.
     * `origin` is the element offset of tap (0, 0), which may lie outside the image; only the
     * in-image taps are ever read, and offsets stay integers so no pointer leaves the array. */
    for (b = 0; b < p->output.n; ++b) {
        for (oy = 0; oy < p->output.h; ++oy) {
            const int32_t in_y0 = oy * p->stride_h - p->pad_h;
            const int32_t ky0 = in_y0 < 0 ? -in_y0 : 0;
            const int32_t ky1 = p->input.h - in_y0 < 3 ? p->input.h - in_y0 : 3;
            for (ox = 0; ox < p->output.w; ++ox) {
                const int32_t in_x0 = ox * p->stride_w - p->pad_w;
                const int32_t kx0 = in_x0 < 0 ? -in_x0 : 0;
                const int32_t kx1 = p->input.w - in_x0 < 3 ? p->input.w - in_x0 : 3;
                const int32_t origin = ((b * p->input.h + in_y0) * p->input.w + in_x0) * channels;
                int8_t *out_px =
                    output + ((b * p->output.h + oy) * p->output.w + ox) * p->output.c;
                for (c = 0; c < channels; ++c) {
                    int32_t acc = 0;
                    for (ky = ky0; ky < ky1; ++ky) {
                        const int32_t in_row = origin + ky * row_stride + c;
                        const int32_t f_row = ky * 3 * channels + c;
                        for (kx = kx0; kx < kx1; ++kx) {
                            acc += (int32_t)filter[f_row + kx * channels] *
                                   ((int32_t)input[in_row + kx * channels] + p->q.input_offset);
                        }
                    }
                    if (bias != NULL) {
                        acc += bias[c];
                    }
                    acc = te_requantize(&p->rq, c, acc) + p->q.output_offset;
                    out_px[c] = (int8_t)te_clamp(acc, p->q.act_min, p->q.act_max);
                }
            }
        }
    }
    return TE_OK;
}

te_status_t te_depthwise_conv_inplace_portable_s8(const te_depthwise_conv_params_t *p,
                                                  const int8_t *input, const int8_t *filter,
                                                  const int32_t *bias, int8_t *output,
                                                  int8_t *scratch)
{
    int32_t b, c, oy, ox, ky, kx, px;
    const te_status_t st = te_dw_inplace_check(p, input, filter, output, scratch);
    if (st != TE_OK) {
        return st;
    }
    for (b = 0; b < p->output.n; ++b) {
        const int32_t base = b * p->input.h * p->input.w * p->input.c;
        for (c = 0; c < p->output.c; ++c) {
            /* Channel c of the output depends on channel c of the input only. */
            for (oy = 0; oy < p->output.h; ++oy) {
                const int32_t in_y0 = oy * p->stride_h - p->pad_h;
                for (ox = 0; ox < p->output.w; ++ox) {
                    const int32_t in_x0 = ox * p->stride_w - p->pad_w;
                    int32_t acc = 0;
                    for (ky = 0; ky < p->filter.h; ++ky) {
                        const int32_t in_y = in_y0 + ky * p->dilation_h;
                        if (in_y < 0 || in_y >= p->input.h) {
                            continue;
                        }
                        for (kx = 0; kx < p->filter.w; ++kx) {
                            const int32_t in_x = in_x0 + kx * p->dilation_w;
                            if (in_x < 0 || in_x >= p->input.w) {
                                continue;
                            }
                            acc += (int32_t)filter[(ky * p->filter.w + kx) * p->filter.c + c] *
                                   ((int32_t)input[base + (in_y * p->input.w + in_x) *
                                                              p->input.c + c] +
                                    p->q.input_offset);
                        }
                    }
                    if (bias != NULL) {
                        acc += bias[c];
                    }
                    acc = te_requantize(&p->rq, c, acc) + p->q.output_offset;
                    scratch[oy * p->output.w + ox] =
                        (int8_t)te_clamp(acc, p->q.act_min, p->q.act_max);
                }
            }
            for (px = 0; px < p->output.h * p->output.w; ++px) {
                output[base + px * p->output.c + c] = scratch[px];
            }
        }
    }
    return TE_OK;
}

/* ---- the SIMD paths' entry points ----------------------------------------------------------
 *
 * Each checks its arguments, its path's geometry and the requantisation domain it needs, and
 * refuses anything else with TE_ERR_ARG: a path called outside its domain would be a silent
 * wrong answer. In a build without SIMD each is its variant's portable loop.
 */

#if TE_SIMD
/** Every channel inside te_simd_requant's exact domain (te_simd_rq_ok). */
static int te_dw_rq_all(const te_depthwise_conv_params_t *p, const int32_t *bias)
{
    return te_simd_rq_ok(&p->rq, bias, p->output.c, p->filter.h * p->filter.w, TE_DW_MAX_TERM);
}

/** At least one channel inside it: the partial paths pay off only then. */
static int te_dw_rq_any(const te_depthwise_conv_params_t *p, const int32_t *bias)
{
    return te_simd_rq_any_ok(&p->rq, bias, p->output.c, p->filter.h * p->filter.w,
                             TE_DW_MAX_TERM);
}

/**
 * A partial path's second pass: the channels outside te_simd_requant's domain, which the SIMD
 * pass computed wrongly, again by TFLite's reference rule (out of place only: the input is
 * intact). A few degenerate channels (multiplier 0, shift -31, a bias near 2^31) then do not
 * send the whole layer to the portable loops.
 */
static void te_dw_fix(const te_depthwise_conv_params_t *p, const int8_t *input,
                      const int8_t *filter, const int32_t *bias, int8_t *output)
{
    const int32_t products = p->filter.h * p->filter.w;
    int32_t oc, b, oy, ox;
    for (oc = 0; oc < p->output.c; ++oc) {
        if (te_simd_rq_channel_ok(&p->rq, bias, oc, products, TE_DW_MAX_TERM)) {
            continue;
        }
        for (b = 0; b < p->output.n; ++b) {
            for (oy = 0; oy < p->output.h; ++oy) {
                for (ox = 0; ox < p->output.w; ++ox) {
                    output[((b * p->output.h + oy) * p->output.w + ox) * p->output.c + oc] =
                        te_dw_value(p, input, filter, bias, b, oy, ox, oc);
                }
            }
        }
    }
}

/* te_depthwise_conv_NAME_s8 (every channel inside the requantisation's domain) and
 * te_depthwise_conv_NAME_partial_s8 (at least one; te_dw_fix recomputes the others): RUN on
 * layers whose params p satisfy DOMAIN. */
#define TE_DW_OUT_PATHS(NAME, DOMAIN, RUN, PORTABLE)                                            \
    te_status_t te_depthwise_conv_##NAME##_s8(const te_depthwise_conv_params_t *p,              \
                                              const int8_t *input, const int8_t *filter,        \
                                              const int32_t *bias, int8_t *output)              \
    {                                                                                           \
        const te_status_t st = te_depthwise_conv_check(p, input, filter, output);               \
        if (st != TE_OK) {                                                                      \
            return st;                                                                          \
        }                                                                                       \
        if (!(DOMAIN) || !te_dw_rq_all(p, bias)) {                                              \
            return TE_ERR_ARG;                                                                  \
        }                                                                                       \
        RUN(p, input, filter, bias, output);                                                    \
        return TE_OK;                                                                           \
    }                                                                                           \
    te_status_t te_depthwise_conv_##NAME##_partial_s8(const te_depthwise_conv_params_t *p,      \
                                                      const int8_t *input, const int8_t *filter,\
                                                      const int32_t *bias, int8_t *output)      \
    {                                                                                           \
        const te_status_t st = te_depthwise_conv_check(p, input, filter, output);               \
        if (st != TE_OK) {                                                                      \
            return st;                                                                          \
        }                                                                                       \
        if (!(DOMAIN) || !te_dw_rq_any(p, bias)) {                                              \
            return TE_ERR_ARG;                                                                  \
        }                                                                                       \
        RUN(p, input, filter, bias, output);                                                    \
        te_dw_fix(p, input, filter, bias, output);                                              \
        return TE_OK;                                                                           \
    }

/* te_depthwise_conv_inplace_NAME_s8: on layers whose params p satisfy DOMAIN, with every
 * channel inside the requantisation's domain, QUADS (a statement) computes the channels below
 * C0 and the plane path the others. */
#define TE_DW_INPLACE_PATH(NAME, DOMAIN, QUADS, C0)                                             \
    te_status_t te_depthwise_conv_inplace_##NAME##_s8(                                          \
        const te_depthwise_conv_params_t *p, const int8_t *input, const int8_t *filter,         \
        const int32_t *bias, int8_t *output, int8_t *scratch)                                   \
    {                                                                                           \
        const te_status_t st = te_dw_inplace_check(p, input, filter, output, scratch);          \
        if (st != TE_OK) {                                                                      \
            return st;                                                                          \
        }                                                                                       \
        if (!(DOMAIN) || !te_dw_rq_all(p, bias)) {                                              \
            return TE_ERR_ARG;                                                                  \
        }                                                                                       \
        QUADS;                                                                                  \
        te_depthwise_inplace_plane_simd(p, input, filter, bias, output, scratch, (C0));         \
        return TE_OK;                                                                           \
    }
#elif defined(__GNUC__) && defined(__ELF__)
/* Without SIMD every path name is its variant's portable loop: another name for the same code
 * (an ELF alias), which costs no byte and no call. */
#define TE_DW_OUT_PATHS(NAME, DOMAIN, RUN, PORTABLE)                                            \
    te_status_t te_depthwise_conv_##NAME##_s8(const te_depthwise_conv_params_t *p,              \
                                              const int8_t *input, const int8_t *filter,        \
                                              const int32_t *bias, int8_t *output)              \
        __attribute__((alias(#PORTABLE)));                                                      \
    te_status_t te_depthwise_conv_##NAME##_partial_s8(const te_depthwise_conv_params_t *p,      \
                                                      const int8_t *input, const int8_t *filter,\
                                                      const int32_t *bias, int8_t *output)      \
        __attribute__((alias(#PORTABLE)));
#define TE_DW_INPLACE_PATH(NAME, DOMAIN, QUADS, C0)                                             \
    te_status_t te_depthwise_conv_inplace_##NAME##_s8(                                          \
        const te_depthwise_conv_params_t *p, const int8_t *input, const int8_t *filter,         \
        const int32_t *bias, int8_t *output, int8_t *scratch)                                   \
        __attribute__((alias("te_depthwise_conv_inplace_portable_s8")));
#else
/* Elsewhere (no ELF aliases): a call of the portable loop. */
#define TE_DW_OUT_PATHS(NAME, DOMAIN, RUN, PORTABLE)                                            \
    te_status_t te_depthwise_conv_##NAME##_s8(const te_depthwise_conv_params_t *p,              \
                                              const int8_t *input, const int8_t *filter,        \
                                              const int32_t *bias, int8_t *output)              \
    {                                                                                           \
        return PORTABLE(p, input, filter, bias, output);                                        \
    }                                                                                           \
    te_status_t te_depthwise_conv_##NAME##_partial_s8(const te_depthwise_conv_params_t *p,      \
                                                      const int8_t *input, const int8_t *filter,\
                                                      const int32_t *bias, int8_t *output)      \
    {                                                                                           \
        return PORTABLE(p, input, filter, bias, output);                                        \
    }
#define TE_DW_INPLACE_PATH(NAME, DOMAIN, QUADS, C0)                                             \
    te_status_t te_depthwise_conv_inplace_##NAME##_s8(                                          \
        const te_depthwise_conv_params_t *p, const int8_t *input, const int8_t *filter,         \
        const int32_t *bias, int8_t *output, int8_t *scratch)                                   \
    {                                                                                           \
        return te_depthwise_conv_inplace_portable_s8(p, input, filter, bias, output, scratch);  \
    }
#endif

TE_DW_OUT_PATHS(3x3_w9, te_dw_is_3x3(p), te_depthwise_simd_w9_all,
                te_depthwise_conv_3x3_portable_s8)
TE_DW_OUT_PATHS(w9, te_dw_fast3(p) && p->depth_multiplier == 1, te_depthwise_simd_w9_all,
                te_depthwise_conv_portable_s8)
TE_DW_OUT_PATHS(pairs, te_dw_pairs_c1(p), te_depthwise_simd_pairs, te_depthwise_conv_portable_s8)
TE_DW_OUT_PATHS(quads, 1, te_depthwise_simd_quads, te_depthwise_conv_portable_s8)

TE_DW_INPLACE_PATH(small, te_dw_small_pixels(p) > 0,
                   te_depthwise_inplace_small_simd(p, input, filter, bias, output, scratch,
                                                   p->output.c & ~3),
                   p->output.c & ~3)
TE_DW_INPLACE_PATH(ring3, te_dw_inplace_ring3(p),
                   te_depthwise_inplace_ring3_simd(p, input, filter, bias, output, scratch),
                   p->output.c & ~3)
TE_DW_INPLACE_PATH(rows, te_dw_inplace_rows(p),
                   te_depthwise_inplace_rows_simd(p, input, filter, bias, output, scratch),
                   p->output.c & ~3)
TE_DW_INPLACE_PATH(ring, te_dw_inplace_ring(p),
                   te_depthwise_inplace_ring_simd(p, input, filter, bias, output, scratch),
                   p->output.c & ~3)
TE_DW_INPLACE_PATH(plane, 1, (void)0, 0)

#undef TE_DW_OUT_PATHS
#undef TE_DW_INPLACE_PATH

/* ---- the dispatchers: the path by the rule the code generator applies ---------------------- */

te_depthwise_path_t te_depthwise_path_s8(const te_depthwise_conv_params_t *p,
                                         const int32_t *bias, te_depthwise_variant_t variant)
{
#if TE_SIMD
    te_depthwise_path_t path;
    if (variant == TE_DEPTHWISE_INPLACE) {
        if (!te_dw_rq_all(p, bias)) {
            return TE_DW_PATH_INPLACE_PORTABLE;
        }
        if (te_dw_small_pixels(p) > 0) {
            return TE_DW_PATH_INPLACE_SMALL;
        }
        if (te_dw_inplace_ring3(p)) {
            return TE_DW_PATH_INPLACE_RING3;
        }
        if (te_dw_inplace_rows(p)) {
            return TE_DW_PATH_INPLACE_ROWS;
        }
        return te_dw_inplace_ring(p) ? TE_DW_PATH_INPLACE_RING : TE_DW_PATH_INPLACE_PLANE;
    }
    if (te_dw_pairs_c1(p)) {
        path = TE_DW_PATH_PAIRS;
    } else if (te_dw_fast3(p) && p->depth_multiplier == 1) {
        path = variant == TE_DEPTHWISE_3X3 ? TE_DW_PATH_3X3_W9 : TE_DW_PATH_W9;
    } else {
        path = TE_DW_PATH_QUADS;
    }
    if (te_dw_rq_all(p, bias)) {
        return path;
    }
    if (te_dw_rq_any(p, bias)) {
        return (te_depthwise_path_t)(path + 1); /* its _partial form */
    }
#else
    (void)p;
    (void)bias;
#endif
    return variant == TE_DEPTHWISE_INPLACE ? TE_DW_PATH_INPLACE_PORTABLE
           : variant == TE_DEPTHWISE_3X3   ? TE_DW_PATH_3X3_PORTABLE
                                           : TE_DW_PATH_PORTABLE;
}

te_status_t te_depthwise_conv_s8(const te_depthwise_conv_params_t *p, const int8_t *input,
                                 const int8_t *filter, const int32_t *bias, int8_t *output)
{
#if TE_SIMD
    const te_status_t st = te_depthwise_conv_check(p, input, filter, output);
    if (st != TE_OK) {
        return st;
    }
    switch (te_depthwise_path_s8(p, bias, TE_DEPTHWISE_GENERIC)) {
    case TE_DW_PATH_PAIRS:
        return te_depthwise_conv_pairs_s8(p, input, filter, bias, output);
    case TE_DW_PATH_PAIRS_PARTIAL:
        return te_depthwise_conv_pairs_partial_s8(p, input, filter, bias, output);
    case TE_DW_PATH_W9:
        return te_depthwise_conv_w9_s8(p, input, filter, bias, output);
    case TE_DW_PATH_W9_PARTIAL:
        return te_depthwise_conv_w9_partial_s8(p, input, filter, bias, output);
    case TE_DW_PATH_QUADS:
        return te_depthwise_conv_quads_s8(p, input, filter, bias, output);
    case TE_DW_PATH_QUADS_PARTIAL:
        return te_depthwise_conv_quads_partial_s8(p, input, filter, bias, output);
    default:
        break;
    }
#endif
    return te_depthwise_conv_portable_s8(p, input, filter, bias, output);
}

te_status_t te_depthwise_conv_3x3_s8(const te_depthwise_conv_params_t *p, const int8_t *input,
                                     const int8_t *filter, const int32_t *bias, int8_t *output)
{
#if TE_SIMD
    const te_status_t st = te_depthwise_conv_check(p, input, filter, output);
    if (st != TE_OK) {
        return st;
    }
    if (!te_dw_is_3x3(p)) {
        return TE_ERR_ARG;
    }
    switch (te_depthwise_path_s8(p, bias, TE_DEPTHWISE_3X3)) {
    case TE_DW_PATH_3X3_W9:
        return te_depthwise_conv_3x3_w9_s8(p, input, filter, bias, output);
    case TE_DW_PATH_3X3_W9_PARTIAL:
        return te_depthwise_conv_3x3_w9_partial_s8(p, input, filter, bias, output);
    default:
        break;
    }
#endif
    return te_depthwise_conv_3x3_portable_s8(p, input, filter, bias, output);
}

int32_t te_depthwise_conv_inplace_get_buffer_size(const te_depthwise_conv_params_t *p)
{
    const int32_t plane = p->output.h * p->output.w, small = 4 * te_dw_small_pixels(p);
    return small > plane ? small : plane;
}

te_status_t te_depthwise_conv_inplace_s8(const te_depthwise_conv_params_t *p, const int8_t *input,
                                         const int8_t *filter, const int32_t *bias,
                                         int8_t *output, int8_t *scratch)
{
#if TE_SIMD
    const te_status_t st = te_dw_inplace_check(p, input, filter, output, scratch);
    if (st != TE_OK) {
        return st;
    }
    switch (te_depthwise_path_s8(p, bias, TE_DEPTHWISE_INPLACE)) {
    case TE_DW_PATH_INPLACE_SMALL:
        return te_depthwise_conv_inplace_small_s8(p, input, filter, bias, output, scratch);
    case TE_DW_PATH_INPLACE_RING3:
        return te_depthwise_conv_inplace_ring3_s8(p, input, filter, bias, output, scratch);
    case TE_DW_PATH_INPLACE_ROWS:
        return te_depthwise_conv_inplace_rows_s8(p, input, filter, bias, output, scratch);
    case TE_DW_PATH_INPLACE_RING:
        return te_depthwise_conv_inplace_ring_s8(p, input, filter, bias, output, scratch);
    case TE_DW_PATH_INPLACE_PLANE:
        return te_depthwise_conv_inplace_plane_s8(p, input, filter, bias, output, scratch);
    default:
        break;
    }
#endif
    return te_depthwise_conv_inplace_portable_s8(p, input, filter, bias, output, scratch);
}

te_depthwise_variant_t te_depthwise_conv_variant(const te_depthwise_conv_params_t *p,
                                                 int32_t in_place)
{
    if (in_place) {
        return TE_DEPTHWISE_INPLACE;
    }
    return te_dw_is_3x3(p) ? TE_DEPTHWISE_3X3 : TE_DEPTHWISE_GENERIC;
}

int32_t te_depthwise_conv_get_buffer_size_s8(const te_depthwise_conv_params_t *p,
                                             int32_t in_place)
{
    if (p == NULL || te_depthwise_conv_variant(p, in_place) != TE_DEPTHWISE_INPLACE) {
        return 0;
    }
    return te_depthwise_conv_inplace_get_buffer_size(p);
}

te_status_t te_depthwise_conv_wrapper_s8(const te_depthwise_conv_params_t *p,
                                         const int8_t *input, const int8_t *filter,
                                         const int32_t *bias, int8_t *output, int8_t *scratch)
{
    if (p == NULL) {
        return TE_ERR_ARG;
    }
    switch (te_depthwise_conv_variant(p, (const int8_t *)output == input)) {
    case TE_DEPTHWISE_INPLACE:
        return te_depthwise_conv_inplace_s8(p, input, filter, bias, output, scratch);
    case TE_DEPTHWISE_3X3:
        return te_depthwise_conv_3x3_s8(p, input, filter, bias, output);
    default:
        return te_depthwise_conv_s8(p, input, filter, bias, output);
    }
}

/* ---- 16x8: int16 activations, int8 weights ----------------------------------------------- */

te_status_t te_depthwise_conv_s16(const te_depthwise_conv_params_t *p, const int16_t *input,
                                  const int8_t *filter, const int64_t *bias, int16_t *output)
{
    int32_t b, oy, ox, ic, m, ky, kx;
    if (p == NULL || input == NULL || output == NULL) {
        return TE_ERR_ARG;
    }
    if (te_depthwise_conv_check(p, (const int8_t *)input, filter, (const int8_t *)output) !=
            TE_OK ||
        !te_quant_s16_ok(&p->q) || !te_requant_s64_ok(&p->rq, p->output.c)) {
        return TE_ERR_ARG;
    }
    /* DepthwiseConvPerChannel for int16 input: int64 sums (|input * filter| <= 2^22 a term),
     * requantised by the int64 rule (te_requant16.h). */
    for (b = 0; b < p->output.n; ++b) {
        for (oy = 0; oy < p->output.h; ++oy) {
            const int32_t in_y0 = oy * p->stride_h - p->pad_h;
            for (ox = 0; ox < p->output.w; ++ox) {
                const int32_t in_x0 = ox * p->stride_w - p->pad_w;
                int16_t *out = output + ((b * p->output.h + oy) * p->output.w + ox) * p->output.c;
                for (ic = 0; ic < p->input.c; ++ic) {
                    for (m = 0; m < p->depth_multiplier; ++m) {
                        const int32_t oc = ic * p->depth_multiplier + m;
                        int64_t acc = bias != NULL ? bias[oc] : 0;
                        for (ky = 0; ky < p->filter.h; ++ky) {
                            const int32_t in_y = in_y0 + ky * p->dilation_h;
                            if (in_y < 0 || in_y >= p->input.h) {
                                continue;
                            }
                            for (kx = 0; kx < p->filter.w; ++kx) {
                                const int32_t in_x = in_x0 + kx * p->dilation_w;
                                if (in_x < 0 || in_x >= p->input.w) {
                                    continue;
                                }
                                acc += (int32_t)filter[(ky * p->filter.w + kx) * p->filter.c + oc] *
                                       (int32_t)input[((b * p->input.h + in_y) * p->input.w +
                                                       in_x) * p->input.c + ic];
                            }
                        }
                        out[oc] = (int16_t)te_clamp(te_requantize_s64(&p->rq, oc, acc),
                                                    p->q.act_min, p->q.act_max);
                    }
                }
            }
        }
    }
    return TE_OK;
}
