/**
 * @file te_resize.h
 * @brief int8 RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR on NHWC activations (TFLite).
 *
 * Input and output share one quantisation (TFLite's converter requires it), so the kernels work
 * on the int8 values directly and never requantise.
 *
 * Which input rows and columns an output pixel reads depends only on the sizes and the
 * align_corners / half_pixel_centers flags. Python (tinyengine/ops/resize.py) computes these
 * source coordinates exactly as TFLM does (for nearest neighbour TFLM uses float arithmetic,
 * which the tables reproduce bit for bit without any float in C) and passes them as constant
 * tables; the kernels check every table entry against the input size before reading.
 *
 * Bilinear follows reference_ops::ResizeBilinearInteger: weights in 1/1024 units, the four-tap
 * sum rounded half away from zero by / 2^20 (TFLM's default double-rounding build).
 */
#ifndef TE_RESIZE_H
#define TE_RESIZE_H

#include "te_common.h"

typedef struct {
    te_dims_t input;  /**< n, h, w, c of the input, each >= 1 */
    te_dims_t output; /**< n, out_h, out_w, c; n and c equal the input's */
} te_resize_params_t;

/**
 * Nearest neighbour: output[b, y, x, :] = input[b, in_y[y], in_x[x], :].
 * @param in_y   output.h source rows, each in [0, input.h).
 * @param in_x   output.w source columns, each in [0, input.w).
 * @param output int8 [n, out_h, out_w, c]; must not overlap input.
 * @return TE_OK, or TE_ERR_ARG for null pointers, inconsistent dims or a table entry out of
 *         range.
 */
te_status_t te_resize_nearest_s8(const te_resize_params_t *p, const int8_t *input,
                                 const int32_t *in_y, const int32_t *in_x, int8_t *output);

/**
 * Bilinear: per output row y the table y_lut holds (y0, y1, wy) at 3 * y: the two source rows,
 * each in [0, input.h), and wy = the scaled source coordinate minus 1024 * y0, in
 * (-1024, 1024) (negative only where the half-pixel coordinate falls before row 0, with
 * y0 == y1). x_lut likewise for columns. Then, with v00 = input[b, y0, x0, c] etc.,
 *   s = v00 (1024 - wy)(1024 - wx) + v10 wy (1024 - wx) + v01 (1024 - wy) wx + v11 wy wx
 *   output = (s +- 2^19) / 2^20 (sign of s, C division), which lies in int8 for valid tables.
 * @param output int8 [n, out_h, out_w, c]; must not overlap input.
 * @return TE_OK, or TE_ERR_ARG for null pointers, inconsistent dims or a table entry out of
 *         range.
 */
te_status_t te_resize_bilinear_s8(const te_resize_params_t *p, const int8_t *input,
                                  const int32_t *y_lut, const int32_t *x_lut, int8_t *output);

#endif /* TE_RESIZE_H */
