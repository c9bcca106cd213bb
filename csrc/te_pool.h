/**
 * @file te_pool.h
 * @brief int8 and int16 pooling: TFLite AVERAGE_POOL_2D, MAX_POOL_2D and MEAN over height and
 *        width.
 *
 * Activations are NHWC int8 (`_s8`) or int16 (`_s16`, TFLite's 16x8 mode). Average and max
 * pooling follow TFLite's reference_integer_ops::AveragePool and ::MaxPool: the window is
 * clipped to the image (padding pixels are skipped, not counted), and input and output share one
 * quantisation, so the kernels never requantise. MEAN follows TFLM's reduce.cc int8 / int16 path
 * (QuantizedMeanOrSum): the sum over the window minus zero point times count, rescaled by one
 * multiplier that already includes the division by the element count. The int16 kernels do the
 * same arithmetic (int32 sums) with int16's range for values and limits.
 */
#ifndef TE_POOL_H
#define TE_POOL_H

#include "te_common.h"

/** Geometry and clamp of a 2-D pooling window; shared by average and max pooling. */
typedef struct {
    te_dims_t input;  /**< n, h, w, c of the input */
    te_dims_t output; /**< n, h, w, c of the output; n and c equal the input's */
    int32_t filter_h; /**< window height, >= 1 */
    int32_t filter_w; /**< window width, >= 1 */
    int32_t stride_h; /**< >= 1 */
    int32_t stride_w; /**< >= 1 */
    int32_t pad_h;    /**< top padding, >= 0 (TFLite puts the odd pixel at the bottom) */
    int32_t pad_w;    /**< left padding, >= 0 */
    int32_t act_min;  /**< fused activation lower limit, type minimum <= act_min <= act_max */
    int32_t act_max;  /**< fused activation upper limit, <= the type's maximum */
} te_pool_params_t;

/** Most pixels an int16 average may sum: their int32 sum plus half the count cannot overflow. */
#define TE_AVGPOOL_S16_MAX_COUNT 65535

typedef te_pool_params_t te_avgpool_params_t;
typedef te_pool_params_t te_maxpool_params_t;

/** MEAN over axes 1 and 2 (global average pooling) with its own output quantisation. */
typedef struct {
    te_dims_t input;    /**< n, h, w, c of the input */
    te_dims_t output;   /**< n, 1, 1, c (the same bytes whether or not dims are kept) */
    te_quant_t q;       /**< input_offset = -input zp, output_offset = output zp, act limits
                             within the type's range */
    int32_t multiplier; /**< Q31 multiplier of in_scale / out_scale / (h * w), >= 0 */
    int32_t shift;      /**< its shift, > 0 is a left shift; -31 <= shift <= 30 */
} te_mean_params_t;

/**
 * Average pooling, any window, stride and padding.
 * @param input  int8 [n, h, w, c] from p->input.
 * @param output int8 [n, out_h, out_w, c] from p->output; must not overlap input.
 * @return TE_OK, or TE_ERR_ARG for null pointers, inconsistent dimensions, or a window that
 *         covers no input pixel.
 */
te_status_t te_avgpool_s8(const te_avgpool_params_t *p, const int8_t *input, int8_t *output);

/**
 * Average pooling of int16 activations, any window, stride and padding.
 * @param input  int16 [n, h, w, c] from p->input.
 * @param output int16 [n, out_h, out_w, c]; must not overlap input.
 * @return TE_OK, or TE_ERR_ARG as te_avgpool_s8, and for a window of more than
 *         TE_AVGPOOL_S16_MAX_COUNT pixels inside the image.
 */
te_status_t te_avgpool_s16(const te_avgpool_params_t *p, const int16_t *input, int16_t *output);

/**
 * Max pooling, any window, stride and padding.
 * @param input  int8 [n, h, w, c] from p->input.
 * @param output int8 [n, out_h, out_w, c] from p->output; must not overlap input.
 * @return TE_OK, or TE_ERR_ARG for null pointers or inconsistent dimensions.
 */
te_status_t te_maxpool_s8(const te_maxpool_params_t *p, const int8_t *input, int8_t *output);

/**
 * Max pooling of int16 activations (the maximum starts from -32768).
 * @param input  int16 [n, h, w, c] from p->input.
 * @param output int16 [n, out_h, out_w, c]; must not overlap input.
 * @return as te_maxpool_s8.
 */
te_status_t te_maxpool_s16(const te_maxpool_params_t *p, const int16_t *input, int16_t *output);

/**
 * MEAN over height and width of each (batch, channel). Needs no scratch: accumulators for a
 * block of channels live on the stack.
 * @param input  int8 [n, h, w, c] from p->input.
 * @param output int8 [n, c]; must not overlap input.
 * @return TE_OK, or TE_ERR_ARG for null pointers or inconsistent dimensions.
 */
te_status_t te_mean_s8(const te_mean_params_t *p, const int8_t *input, int8_t *output);

/**
 * MEAN over height and width of int16 activations (int32 sums wrapping as TFLM's).
 * @param input  int16 [n, h, w, c] from p->input.
 * @param output int16 [n, c]; must not overlap input.
 * @return as te_mean_s8.
 */
te_status_t te_mean_s16(const te_mean_params_t *p, const int16_t *input, int16_t *output);

#endif /* TE_POOL_H */
