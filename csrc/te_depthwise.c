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
 * (4 * (w + 2) > h * w, see te_depthwise_inplace_simd), the padded plane (h + 2) x (w + 2) at
 * most TE_DW_SMALL_MAX_PIXELS, and the input's zero point (-input_offset) an int8 so that the
 * padding can hold it. Shared by the scratch size (every build) and the SIMD kernel.
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

static te_dw_row_t te_dw_row(const te_depthwise_conv_params_t *p, int32_t b, int32_t oy)
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

/** Depthwise convolution, any geometry: channel groups outside, pixels inside. */
static void te_depthwise_simd(const te_depthwise_conv_params_t *p, const int8_t *input,
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
    for (oc = simd_end; oc < oc_n; ++oc) {
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

/**
 * In-place depthwise convolution on a small plane (te_dw_small_pixels's domain), channels below
 * c_end (a multiple of 4). For each block of four channels the whole input plane is copied into
 * scratch as one word per pixel, inside a one-pixel border holding the input's zero point (its
 * taps add (zp + input_offset) * f = 0, so the sums are the unpadded ones); every output pixel
 * is then an interior 3x3 window of the copy and is written straight to the output, whose block
 * has been read already. Scratch: 4 * (h + 2) * (w + 2) bytes.
 */
static void te_depthwise_inplace_small_simd(const te_depthwise_conv_params_t *p,
                                            const int8_t *input, const int8_t *filter,
                                            const int32_t *bias, int8_t *output,
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
 * In-place depthwise convolution (depth multiplier 1, output shape = input shape).
 *
 * Four channels at a time through a ring of delayed output pixels: with stride 1, output pixel
 * k (raster order over n, h, w) reads input pixels up to k + pad_h * w + pad_w only, so once
 * pixels up to k - 1 are computed, input pixel k - L with L = pad_h * w + pad_w + 1 has no reader
 * left and its four channels can take their outputs, freeing the ring slot pixel k needs. The
 * ring holds L pixels of 4 channels, which fits the caller's one-plane scratch (h * w bytes)
 * when 4 L <= h * w. A 3x3 layer whose ring does not fit takes the small-plane path
 * (te_depthwise_inplace_small_simd, for which the scratch is larger). Channels left over, and
 * other layers whose ring does not fit, go one channel at a time through the plane as in the
 * portable path.
 */
static void te_depthwise_inplace_simd(const te_depthwise_conv_params_t *p, const int8_t *input,
                                      const int8_t *filter, const int32_t *bias,
                                      int8_t *output, int8_t *scratch)
{
    const te_simd_act_t a = te_simd_act(&p->q);
    const int32_t off2 = te_simd_dup16(p->q.input_offset);
    const int32_t c_n = p->output.c, plane = p->output.h * p->output.w;
    const int32_t ring = p->pad_h * p->output.w + p->pad_w + 1;
    const int small = te_dw_small_pixels(p) > 0;
    const int32_t simd_end =
        !small && p->stride_h == 1 && p->stride_w == 1 && 4 * ring <= plane ? c_n & ~3 : 0;
    const int32_t plane_start = small ? c_n & ~3 : simd_end;
    const int fast3 = te_dw_fast3(p);
    const int32_t row = p->input.w * c_n;
    int32_t c, b, oy, ox, px, lo, hi;
    te_dw_interior_x(p, &lo, &hi);
    for (c = 0; c < simd_end; c += 4) {
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
    if (small) {
        te_depthwise_inplace_small_simd(p, input, filter, bias, output, scratch, plane_start);
    }
    for (c = plane_start; c < c_n; ++c) {
        /* Channel c of the output depends on channel c of the input only. */
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

#if TE_SIMD
/**
 * A layer partly inside the fast requantisation's domain (te_simd_rq_channel_ok): the SIMD
 * pass over every channel, then the channels outside the domain again, exactly (out-of-place
 * kernels only: the input is intact). Returns 0, doing nothing, when no channel is inside.
 */
static int te_depthwise_partial_simd(const te_depthwise_conv_params_t *p, const int8_t *input,
                                     const int8_t *filter, const int32_t *bias, int8_t *output,
                                     int32_t products)
{
    int32_t oc, b, oy, ox;
    if (!te_simd_rq_any_ok(&p->rq, bias, p->output.c, products, TE_DW_MAX_TERM)) {
        return 0;
    }
    te_depthwise_simd(p, input, filter, bias, output);
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
    return 1;
}
#endif

te_status_t te_depthwise_conv_s8(const te_depthwise_conv_params_t *p, const int8_t *input,
                                 const int8_t *filter, const int32_t *bias, int8_t *output)
{
    int32_t b, oy, ox, oc;
    const te_status_t st = te_depthwise_conv_check(p, input, filter, output);
    if (st != TE_OK) {
        return st;
    }
#if TE_SIMD
    if (te_simd_rq_ok(&p->rq, bias, p->output.c, p->filter.h * p->filter.w, TE_DW_MAX_TERM)) {
        te_depthwise_simd(p, input, filter, bias, output);
        return TE_OK;
    }
    if (te_depthwise_partial_simd(p, input, filter, bias, output, p->filter.h * p->filter.w)) {
        return TE_OK;
    }
#endif
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

te_status_t te_depthwise_conv_3x3_s8(const te_depthwise_conv_params_t *p, const int8_t *input,
                                     const int8_t *filter, const int32_t *bias, int8_t *output)
{
    int32_t b, oy, ox, c, ky, kx, channels, row_stride;
    const te_status_t st = te_depthwise_conv_check(p, input, filter, output);
    if (st != TE_OK) {
        return st;
    }
    if (p->depth_multiplier != 1 || p->filter.h != 3 || p->filter.w != 3 || p->dilation_h != 1 ||
        p->dilation_w != 1 || p->pad_h > 1 || p->pad_w > 1) {
        return TE_ERR_ARG;
    }
#if TE_SIMD
    if (te_simd_rq_ok(&p->rq, bias, p->output.c, 9, TE_DW_MAX_TERM)) {
        te_depthwise_simd(p, input, filter, bias, output);
        return TE_OK;
    }
    if (te_depthwise_partial_simd(p, input, filter, bias, output, 9)) {
        return TE_OK;
    }
#endif
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

int32_t te_depthwise_conv_inplace_get_buffer_size(const te_depthwise_conv_params_t *p)
{
    const int32_t plane = p->output.h * p->output.w, small = 4 * te_dw_small_pixels(p);
    return small > plane ? small : plane;
}

te_status_t te_depthwise_conv_inplace_s8(const te_depthwise_conv_params_t *p, const int8_t *input,
                                         const int8_t *filter, const int32_t *bias,
                                         int8_t *output, int8_t *scratch)
{
    int32_t b, c, oy, ox, ky, kx, px;
    const te_status_t st = te_depthwise_conv_check(p, input, filter, output);
    if (st != TE_OK) {
        return st;
    }
    if (p->depth_multiplier != 1 || p->input.h != p->output.h || p->input.w != p->output.w ||
        p->input.c != p->output.c) {
        return TE_ERR_ARG;
    }
    if (scratch == NULL) {
        return TE_ERR_SCRATCH;
    }
#if TE_SIMD
    if (te_simd_rq_ok(&p->rq, bias, p->output.c, p->filter.h * p->filter.w, TE_DW_MAX_TERM)) {
        te_depthwise_inplace_simd(p, input, filter, bias, output, scratch);
        return TE_OK;
    }
#endif
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

/* The 3x3 kernel's domain (its own check refuses anything else). */
static int te_dw_is_3x3(const te_depthwise_conv_params_t *p)
{
    return p->depth_multiplier == 1 && p->filter.h == 3 && p->filter.w == 3 &&
           p->dilation_h == 1 && p->dilation_w == 1 && p->pad_h >= 0 && p->pad_h <= 1 &&
           p->pad_w >= 0 && p->pad_w <= 1;
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
