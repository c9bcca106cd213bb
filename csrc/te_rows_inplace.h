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

#endif /* TE_ROWS_INPLACE_H */
