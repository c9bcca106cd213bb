/**
 * @file te_prelu.h
 * @brief int8 PRELU (TFLite PRELU) with alpha broadcast against the input, up to 4-D.
 *
 * As TFLite's reference_ops::BroadcastPrelu4DSlow (double rounding), with
 * v = x + input_offset and a = alpha + alpha_offset:
 *   v >= 0: y = MultiplyByQuantizedMultiplier(v, multiplier_identity, shift_identity)
 *   v <  0: y = MultiplyByQuantizedMultiplier(v * a, multiplier_alpha, shift_alpha)
 * then y + output_offset, clamped to [-128, 127].
 */
#ifndef TE_PRELU_H
#define TE_PRELU_H

#include "te_common.h"

typedef struct {
    te_dims_t input;             /**< 4-D input (and output) shape, each dim >= 1 */
    te_dims_t alpha;             /**< 4-D alpha shape; each dim 1 or the input's */
    int32_t input_offset;        /**< minus the input zero point, in [-127, 128] */
    int32_t alpha_offset;        /**< minus the alpha zero point, in [-127, 128] */
    int32_t output_offset;       /**< the output zero point, in [-128, 127] */
    int32_t multiplier_identity; /**< Q31 multiplier of s_in / s_out, >= 0 */
    int32_t shift_identity;      /**< in [-31, 30]; > 0 is a left shift */
    int32_t multiplier_alpha;    /**< Q31 multiplier of s_in * s_alpha / s_out, >= 0 */
    int32_t shift_alpha;         /**< in [-31, 30] */
} te_prelu_params_t;

/**
 * @param input  int8 [input.n][h][w][c]
 * @param alpha  int8 [alpha.n][h][w][c]
 * @param output int8 [input.n][h][w][c]; may be the input buffer (each element is read before
 *               it is written)
 * @return TE_OK, or TE_ERR_ARG for null pointers, an alpha shape that does not broadcast into
 *         the input, or parameters outside the ranges above.
 */
te_status_t te_prelu_s8(const te_prelu_params_t *p, const int8_t *input, const int8_t *alpha,
                        int8_t *output);

#endif /* TE_PRELU_H */
