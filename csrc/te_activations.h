/**
 * @file te_activations.h
 * @brief RELU and RELU6 (TFLite RELU, RELU6) on int8 and int16 tensors, element by element.
 *
 * RELU requantises, as TFLite Micro's ReluQuantized<T> (double rounding):
 *   y = clamp(output_zero_point + MultiplyByQuantizedMultiplier(x - input_zero_point, m, s),
 *             act_min, act_max)
 * RELU6 clamps the input values to [lower, upper] without requantising (Relu6Quantized<T>); the
 * output then has the input's quantisation. The int16 entry points (TFLite's 16x8 mode) do the
 * same arithmetic; only the value range of the type differs.
 */
#ifndef TE_ACTIVATIONS_H
#define TE_ACTIVATIONS_H

#include "te_common.h"

typedef struct {
    int32_t size;              /**< elements, >= 1 */
    int32_t input_zero_point;  /**< in the type's range (int8: [-128, 127]; int16: 0 in TFLite) */
    int32_t output_zero_point; /**< in the type's range */
    int32_t multiplier;        /**< Q31 multiplier of s_in / s_out, >= 0 */
    int32_t shift;             /**< in [-31, 30]; > 0 is a left shift */
    int32_t act_min;           /**< lower limit, >= the type's minimum (the output zero point) */
    int32_t act_max;           /**< upper limit, <= the type's maximum, >= act_min */
} te_relu_params_t;

/**
 * RELU with requantisation, int8.
 * @param input  int8 [size]
 * @param output int8 [size]; may be the input buffer (each element is read before it is written)
 * @return TE_OK, or TE_ERR_ARG for null pointers or parameters outside the ranges above.
 */
te_status_t te_relu_s8(const te_relu_params_t *p, const int8_t *input, int8_t *output);

/**
 * RELU with requantisation, int16 (limits within [-32768, 32767]).
 * @param input  int16 [size]
 * @param output int16 [size]; may be the input buffer
 * @return as te_relu_s8
 */
te_status_t te_relu_s16(const te_relu_params_t *p, const int16_t *input, int16_t *output);

typedef struct {
    int32_t size;  /**< elements, >= 1 */
    int32_t lower; /**< the input zero point, >= the type's minimum */
    int32_t upper; /**< 6.0 in the input's units, in [lower, the type's maximum] */
} te_relu6_params_t;

/**
 * RELU6: clamp each int8 value to [lower, upper].
 * @param input  int8 [size]
 * @param output int8 [size]; may be the input buffer
 * @return TE_OK, or TE_ERR_ARG for null pointers or limits outside the ranges above.
 */
te_status_t te_relu6_s8(const te_relu6_params_t *p, const int8_t *input, int8_t *output);

/**
 * RELU6 on int16 values (limits within [-32768, 32767]).
 * @param input  int16 [size]
 * @param output int16 [size]; may be the input buffer
 * @return as te_relu6_s8
 */
te_status_t te_relu6_s16(const te_relu6_params_t *p, const int16_t *input, int16_t *output);

#endif /* TE_ACTIVATIONS_H */
