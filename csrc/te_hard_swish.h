/**
 * @file te_hard_swish.h
 * @brief int8 HARD_SWISH (TFLite HARD_SWISH): y = x * relu6(x + 3) / 6, in int16 fixed point.
 *
 * As TFLite's reference_ops::HardSwish<int8_t>: with v = (x - input_zero_point) * 128,
 *   p = SRDHM16(v, output_multiplier)                       x on the pre-shift output scale
 *   r = v rescaled by reluish_multiplier * 2^reluish_exponent, saturating to int16 (3.0 -> 32768)
 *   r = (r + 32768) >> 1                                    [-1, 1] -> [0, 1]
 *   y = RoundingDivideByPOT(SDHM16(r, p), -output_exponent) + output_zero_point
 * where SRDHM16 rounds and SDHM16 truncates the doubled high half of an int16 product; y wraps
 * in int16 as TFLite's does, then clamps to [-128, 127].
 */
#ifndef TE_HARD_SWISH_H
#define TE_HARD_SWISH_H

#include "te_common.h"

typedef struct {
    int32_t size;               /**< elements, >= 1 */
    int32_t input_zero_point;   /**< in [-128, 127] */
    int32_t output_zero_point;  /**< in [-128, 127] */
    int32_t output_multiplier;  /**< Q15 multiplier of s_in / (128 s_out), in [0, 32767] */
    int32_t output_exponent;    /**< in [-15, 0] */
    int32_t reluish_multiplier; /**< Q15 multiplier of s_in * 256 / 3, in [0, 32767] */
    int32_t reluish_exponent;   /**< in [-15, 31] */
} te_hard_swish_params_t;

/**
 * @param input  int8 [size]
 * @param output int8 [size]; may be the input buffer (each element is read before it is written)
 * @return TE_OK, or TE_ERR_ARG for null pointers or parameters outside the ranges above.
 */
te_status_t te_hard_swish_s8(const te_hard_swish_params_t *p, const int8_t *input,
                             int8_t *output);

#endif /* TE_HARD_SWISH_H */
