/**
 * @file te_transpose_conv.h
 * @brief Transposed convolution (TFLite TRANSPOSE_CONV), filter OHWI, per-channel weights: int8,
 *        and 16x8 (int16 activations, int8 weights, int64 bias) through te_transpose_conv_s16.
 *
 * As TFLite's reference_integer_ops::TransposeConv: every input pixel contributes
 *   (input[n][y][x][ic] + input_offset) * filter[oc][ky][kx][ic]
 * to the int32 accumulator of output pixel (y * stride_h - pad_h + ky, x * stride_w - pad_w + kx)
 * when that pixel lies inside the output; then bias, requantisation per output channel, the output
 * offset and the clamp. The accumulators wrap modulo 2^32 as TFLite's int32 sums do. The filter's
 * zero point is not applied (TFLite's symmetric weights). TFLite scatters into an int32 buffer of
 * the whole output (4 bytes per output element of scratch); this kernel gathers each output
 * pixel's taps instead and needs no scratch, with the same sums.
 */
#ifndef TE_TRANSPOSE_CONV_H
#define TE_TRANSPOSE_CONV_H

#include "te_common.h"

typedef struct {
    te_dims_t input;  /**< NHWC input, every dim >= 1 */
    te_dims_t filter; /**< OHWI: n = output channels, c = input channels (= input.c) */
    te_dims_t output; /**< NHWC output: n = input.n, c = filter.n */
    int32_t stride_h; /**< >= 1 */
    int32_t stride_w; /**< >= 1 */
    int32_t pad_h;    /**< top padding (TFLite's SAME/VALID rule on the output size), >= 0 */
    int32_t pad_w;    /**< left padding, >= 0 */
    te_quant_t q;     /**< input_offset in [-127, 128]; -128 <= act_min <= act_max <= 127 */
    te_requant_t rq;  /**< one multiplier and shift per output channel, or one (per tensor) */
} te_transpose_conv_params_t;

/**
 * Transposed convolution.
 * @param input   int8 [input.n][input.h][input.w][input.c]
 * @param filter  int8 [filter.n][filter.h][filter.w][filter.c]
 * @param bias    int32 [output.c], or NULL
 * @param output  int8 [output.n][output.h][output.w][output.c]; must not alias the input
 * @return TE_OK; TE_ERR_ARG for a NULL pointer (bias excepted), a non-positive dimension or
 *         stride, negative padding, channel or batch counts that disagree, or an offset or
 *         limit outside the ranges above.
 */
te_status_t te_transpose_conv_s8(const te_transpose_conv_params_t *p, const int8_t *input,
                                 const int8_t *filter, const int32_t *bias, int8_t *output);

/**
 * 16x8 transposed convolution (TFLite's TransposeConv for int16 input): exact int64 sums of
 * input * filter over the same taps as te_transpose_conv_s8 (TFLite's int64 scratch of the whole
 * output is not needed: the kernel gathers), bias, then TFLite's int64
 * MultiplyByQuantizedMultiplier (te_requant16.h) and the clamp.
 * Domain: the dimensions of te_transpose_conv_s8; q.input_offset == q.output_offset == 0
 * (symmetric int16), INT16_MIN <= q.act_min <= q.act_max <= INT16_MAX, multipliers >= 0 and
 * shifts in [-31, TE_S64_MAX_SHIFT].
 * @param input   int16 [input.n][input.h][input.w][input.c]
 * @param filter  int8 [filter.n][filter.h][filter.w][filter.c]
 * @param bias    int64 [output.c] (an int16 bias widened by the code generator), or NULL
 * @param output  int16 [output.n][output.h][output.w][output.c]; must not alias the input
 * @return TE_OK, or TE_ERR_ARG outside the domain.
 */
te_status_t te_transpose_conv_s16(const te_transpose_conv_params_t *p, const int16_t *input,
                                  const int8_t *filter, const int64_t *bias, int16_t *output);

#endif /* TE_TRANSPOSE_CONV_H */
