/**
 * @file te_activations.h
 * @brief int8 RELU and RELU6 (TFLite RELU, RELU6), element by element.
 *
 * RELU requantises, as TFLite Micro's ReluQuantized (double rounding):
 *   y = clamp(output_zero_point + MultiplyByQuantizedMultiplier(x - input_zero_point, m, s),
 *             act_min, act_max)
 * RELU6 clamps the input bytes to [lower, upper] without requantising (Relu6Quantized); the
 * output then has the input's quantisation.
 */
#ifndef TE_ACTIVATIONS_H
#define TE_ACTIVATIONS_H

#include "te_common.h"

typedef struct {
    int32_t size;              /**< elements, >= 1 */
    int32_t input_zero_point;  /**< in [-128, 127] */
    int32_t output_zero_point; /**< in [-128, 127] */
    int32_t multiplier;        /**< Q31 multiplier of s_in / s_out, >= 0 */
    int32_t shift;             /**< in [-31, 30]; > 0 is a left shift */
    int32_t act_min;           /**< lower limit, >= -128 (the output zero point for RELU) */
    int32_t act_max;           /**< upper limit, <= 127, >= act_min */
} te_relu_params_t;

/**
 * RELU with requantisation.
 * @param input  int8 [size]
 * @param output int8 [size]; may be the input buffer (each element is read before it is written)
 * @return TE_OK, or TE_ERR_ARG for null pointers or parameters outside the ranges above.
 */
te_status_t te_relu_s8(const te_relu_params_t *p, const int8_t *input, int8_t *output);

typedef struct {
    int32_t size;  /**< elements, >= 1 */
    int32_t lower; /**< the input zero point, in [-128, 127] */
    int32_t upper; /**< 6.0 in the input's units, in [lower, 127] */
} te_relu6_params_t;

/**
 * RELU6: clamp each byte to [lower, upper].
 * @param input  int8 [size]
 * @param output int8 [size]; may be the input buffer
 * @return TE_OK, or TE_ERR_ARG for null pointers or limits outside the ranges above.
 */
te_status_t te_relu6_s8(const te_relu6_params_t *p, const int8_t *input, int8_t *output);

#endif /* TE_ACTIVATIONS_H */
