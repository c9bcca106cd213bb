/**
 * @file te_leaky_relu.h
 * @brief LEAKY_RELU (TFLite LEAKY_RELU) on int8 and int16 tensors, element by element.
 *
 * As TFLite's reference_ops::QuantizeLeakyRelu<T> (double rounding), with
 * v = x - input_zero_point:
 *   v >= 0: y = output_zero_point + MultiplyByQuantizedMultiplier(v, m_identity, s_identity)
 *   v <  0: y = output_zero_point +- MultiplyByQuantizedMultiplier(v, |m_alpha|, s_alpha),
 *           negated when m_alpha < 0 (a negative alpha),
 * clamped to the type's range ([-128, 127] or [-32768, 32767]).
 */
#ifndef TE_LEAKY_RELU_H
#define TE_LEAKY_RELU_H

#include "te_common.h"

typedef struct {
    int32_t size;                /**< elements, >= 1 */
    int32_t input_zero_point;    /**< in the type's range */
    int32_t output_zero_point;   /**< in the type's range */
    int32_t multiplier_identity; /**< Q31 multiplier of s_in / s_out, >= 0 */
    int32_t shift_identity;      /**< in [-31, 30]; > 0 is a left shift */
    int32_t multiplier_alpha;    /**< Q31 multiplier of alpha * s_in / s_out, > INT32_MIN */
    int32_t shift_alpha;         /**< in [-31, 30] */
} te_leaky_relu_params_t;

/**
 * @param input  int8 [size]
 * @param output int8 [size]; may be the input buffer (each element is read before it is written)
 * @return TE_OK, or TE_ERR_ARG for null pointers or parameters outside the ranges above.
 */
te_status_t te_leaky_relu_s8(const te_leaky_relu_params_t *p, const int8_t *input,
                             int8_t *output);

/**
 * The int16 path (TFLite's 16x8 mode): the same arithmetic, clamped to [-32768, 32767].
 * @param input  int16 [size]
 * @param output int16 [size]; may be the input buffer
 * @return as te_leaky_relu_s8
 */
te_status_t te_leaky_relu_s16(const te_leaky_relu_params_t *p, const int16_t *input,
                              int16_t *output);

#endif /* TE_LEAKY_RELU_H */
