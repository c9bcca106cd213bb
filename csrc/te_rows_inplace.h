/**
 * @file te_rows_inplace.h
 * @brief Band by band in place: a windowed op (convolution, depthwise convolution) whose output
 *        overwrites its own input, computed a band of output rows at a time by the op's
 *        ordinary out-of-place kernel, straight into its place.
 *
 * Output row t (t = b * out_h + r over the batches) takes out_row bytes at output + t * out_row
 * and reads input rows from max(0, r * stride - pad) of batch b on. The input starts `offset`
 * bytes after the output (offset >= 0), so the first input byte row t reads is at
 * F(t) = offset + (b * in_h + max(0, r * stride - pad)) * in_row, and F never decreases. A band
 * of rows [t0, t1) within one batch may be written once its bytes end at or before F(t0): it then
 * overlaps neither the input it reads itself nor any input a later band reads. Bands of r rows
 * all fit when offset >= need(r) = max over bands of t1 * out_row - (F(t0) - offset); the
 * kernel takes the largest r the offset allows (fewest calls). No scratch, no copy.
 *
 * mcunet-in3's stride-2 stem (176x176x3 -> 88x88x16) runs in place with its input 32,032 bytes
 * into its 123,904-byte output, one row per band: 124,960 bytes for both instead of 216,832.
 * tinyengine/ops/rows_inplace.py computes need(r) and the band choice the same way.
 */
#ifndef TE_ROWS_INPLACE_H
#define TE_ROWS_INPLACE_H

#include "te_common.h"

/** Row geometry of a windowed op. */
typedef struct {
    int32_t n;       /**< batches, >= 1 */
    int32_t in_h;    /**< input rows per batch, >= 1 */
    int32_t in_row;  /**< bytes of one input row (w * c), >= 1 */
    int32_t out_h;   /**< output rows per batch, >= 1 */
    int32_t out_row; /**< bytes of one output row, >= 1 */
    int32_t stride;  /**< rows between the windows of consecutive output rows, >= 1 */
    int32_t pad;     /**< rows of top padding, >= 0 */
} te_rows_t;

/** Computes output rows [r0, r1) of batch b into out ((r1 - r0) * out_row bytes). */
typedef te_status_t (*te_band_fn_t)(const void *ctx, int32_t b, int32_t r0, int32_t r1,
                                    int8_t *out);

/** The largest band (rows per call) the input at `offset` bytes after the output allows; 0 when
 * none does or the geometry is bad. */
int32_t te_rows_inplace_band(const te_rows_t *g, int32_t offset);

/**
 * Every output row through `fn`, a band at a time. Output and input apart: one band per batch.
 * Otherwise the input must start at or after the output, far enough for bands of one row.
 * @return TE_OK, the first non-OK status of `fn`, or TE_ERR_ARG for a bad geometry or an input
 *         too close after (or before) an output it overlaps.
 */
te_status_t te_rows_inplace_run(const te_rows_t *g, const int8_t *input, int8_t *output,
                                te_band_fn_t fn, const void *ctx);

/**
 * The front end of a band-by-band in-place kernel, for a layer type whose params have the
 * fields of te_conv2d_params_t's geometry (input, output, filter, stride_h, dilation_h, pad_h)
 * and whose out-of-place wrapper takes (params, input, filter, bias, output, scratch = NULL):
 * NAME_rows_inplace_band(p, input_offset) and NAME_rows_inplace_s8(p, input, filter, bias,
 * output). te_conv_rows.c and te_depthwise_rows.c instantiate it; each band is one call of the
 * wrapper on the input rows its windows cover, as a smaller layer.
 */
#define TE_ROWS_FRONT_END(NAME, PARAMS_T, WRAPPER)                                              \
    typedef struct {                                                                            \
        const PARAMS_T *p;                                                                      \
        const int8_t *input;                                                                    \
        const int8_t *filter;                                                                   \
        const int32_t *bias;                                                                    \
    } NAME##_rows_ctx_t;                                                                        \
                                                                                                \
    static int NAME##_rows_geometry(const PARAMS_T *p, te_rows_t *g)                            \
    {                                                                                           \
        /* every window must reach the image: a band of padding alone has no input rows */     \
        if (p == NULL || p->input.n < 1 || p->input.h < 1 || p->input.w < 1 ||                  \
            p->input.c < 1 || p->output.n != p->input.n || p->output.h < 1 ||                   \
            p->output.w < 1 || p->output.c < 1 || p->filter.h < 1 || p->stride_h < 1 ||         \
            p->dilation_h < 1 || p->pad_h < 0 ||                                                \
            (p->output.h - 1) * p->stride_h - p->pad_h >= p->input.h ||                         \
            (p->filter.h - 1) * p->dilation_h < p->pad_h) {                                     \
            return 0;                                                                           \
        }                                                                                       \
        g->n = p->input.n;                                                                      \
        g->in_h = p->input.h;                                                                   \
        g->in_row = p->input.w * p->input.c;                                                    \
        g->out_h = p->output.h;                                                                 \
        g->out_row = p->output.w * p->output.c;                                                 \
        g->stride = p->stride_h;                                                                \
        g->pad = p->pad_h;                                                                      \
        return 1;                                                                               \
    }                                                                                           \
                                                                                                \
    static te_status_t NAME##_rows_band(const void *ctx, int32_t b, int32_t r0, int32_t r1,     \
                                        int8_t *out)                                            \
    {                                                                                           \
        const NAME##_rows_ctx_t *c = (const NAME##_rows_ctx_t *)ctx;                            \
        const PARAMS_T *p = c->p;                                                               \
        PARAMS_T s = *p;                                                                        \
        const int32_t y0 = r0 * p->stride_h - p->pad_h;                                         \
        const int32_t lo = y0 > 0 ? y0 : 0;                                                     \
        const int32_t end =                                                                     \
            (r1 - 1) * p->stride_h - p->pad_h + (p->filter.h - 1) * p->dilation_h + 1;          \
        const int32_t hi = end < p->input.h ? end : p->input.h;                                 \
        if (hi <= lo) {                                                                         \
            return TE_ERR_ARG;                                                                  \
        }                                                                                       \
        s.input.n = 1;                                                                          \
        s.output.n = 1;                                                                         \
        s.input.h = hi - lo;                                                                    \
        s.output.h = r1 - r0;                                                                   \
        s.pad_h = lo - y0;                                                                      \
        return WRAPPER(&s, c->input + (b * p->input.h + lo) * p->input.w * p->input.c,          \
                       c->filter, c->bias, out, NULL);                                          \
    }                                                                                           \
                                                                                                \
    int32_t NAME##_rows_inplace_band(const PARAMS_T *p, int32_t input_offset)                   \
    {                                                                                           \
        te_rows_t g;                                                                            \
        return NAME##_rows_geometry(p, &g) ? te_rows_inplace_band(&g, input_offset) : 0;        \
    }                                                                                           \
                                                                                                \
    te_status_t NAME##_rows_inplace_s8(const PARAMS_T *p, const int8_t *input,                  \
                                       const int8_t *filter, const int32_t *bias,               \
                                       int8_t *output)                                          \
    {                                                                                           \
        te_rows_t g;                                                                            \
        NAME##_rows_ctx_t c;                                                                    \
        if (!NAME##_rows_geometry(p, &g) || filter == NULL) {                                   \
            return TE_ERR_ARG;                                                                  \
        }                                                                                       \
        c.p = p;                                                                                \
        c.input = input;                                                                        \
        c.filter = filter;                                                                      \
        c.bias = bias;                                                                          \
        return te_rows_inplace_run(&g, input, output, NAME##_rows_band, &c);                    \
    }

#endif /* TE_ROWS_INPLACE_H */
