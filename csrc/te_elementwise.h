/**
 * @file te_elementwise.h
 * @brief Element-wise binary ops with 4-D broadcasting: TFLite SUB, MUL, SQUARED_DIFFERENCE,
 *        MAXIMUM and MINIMUM on int8, and SUB and MUL on int16 (TFLite's 16x8 mode).
 *
 * Per element, as TFLite's reference kernels (double rounding, TFLITE_SINGLE_ROUNDING unset):
 *   SUB:  s_k = MultiplyByQuantizedMultiplierSmallerThanOneExp((x_k + offset_k) << left_shift,
 *                                                              m_k, sh_k)
 *         y   = MultiplyByQuantizedMultiplierSmallerThanOneExp(s_1 - s_2, m_out, sh_out)
 *               + output_offset, clamped to [act_min, act_max]
 *   SQUARED_DIFFERENCE: s_k as SUB (left_shift 7),
 *         y   = MultiplyByQuantizedMultiplier((s_1 - s_2)^2, m_out, sh_out) + output_offset
 *   MUL:  y   = MultiplyByQuantizedMultiplier((x_1 + offset_1) * (x_2 + offset_2), m_out, sh_out)
 *               + output_offset, clamped to [act_min, act_max]
 *   MAXIMUM / MINIMUM: y = max / min(x_1, x_2) on the raw int8 values (inputs and output share
 *         one quantisation, so nothing is rescaled).
 *
 * The int16 kernels (te_sub_s16, te_mul_s16) compute the same formulas on symmetric int16
 * tensors (every offset 0) with TFLite's int16 constants: SUB's left_shift is 15, not 20.
 * Field ranges below are int8's; the int16 entry points state theirs.
 *
 * Every kernel reads both operands of an element before writing it, so the output may alias an
 * input whose shape is the output's.
 */
#ifndef TE_ELEMENTWISE_H
#define TE_ELEMENTWISE_H

#include "te_common.h"

/** Shapes of a broadcasting binary op, NHWC and left-padded with 1s to 4-D (numpy aligns the
 *  right-most dimensions). Each input dimension is 1 (broadcast) or equal to the output's. */
typedef struct {
    te_dims_t input1;
    te_dims_t input2;
    te_dims_t output; /**< each dim >= 1 */
} te_broadcast_dims_t;

/** One input of SUB / SQUARED_DIFFERENCE: offset and its rescaling into the common domain. */
typedef struct {
    int32_t offset;     /**< minus the zero point, in [-127, 128] */
    int32_t multiplier; /**< Q31 multiplier, >= 0 */
    int32_t shift;      /**< in [-31, 0] (a right shift) */
} te_ew_input_t;

typedef struct {
    te_broadcast_dims_t dims;
    te_ew_input_t input1;
    te_ew_input_t input2;
    int32_t left_shift;        /**< in [0, 20]; TFLite uses 20 for int8 */
    int32_t output_multiplier; /**< Q31 multiplier, >= 0 */
    int32_t output_shift;      /**< in [-31, 0] */
    int32_t output_offset;     /**< the output zero point, in [-128, 127] */
    int32_t act_min;           /**< fused activation lower limit, >= -128 */
    int32_t act_max;           /**< fused activation upper limit, <= 127, >= act_min */
} te_sub_params_t;

typedef struct {
    te_broadcast_dims_t dims;
    te_ew_input_t input1;
    te_ew_input_t input2;
    int32_t left_shift;        /**< in [0, 7]; TFLite uses 7 for int8, so (s_1 - s_2)^2 < 2^30 */
    int32_t output_multiplier; /**< Q31 multiplier, >= 0 */
    int32_t output_shift;      /**< in [-31, 1]: a left shift of at most 1 keeps int32 exact */
    int32_t output_offset;     /**< the output zero point, in [-128, 127] */
    int32_t act_min;           /**< lower limit, >= -128 (the type's: -128) */
    int32_t act_max;           /**< upper limit, <= 127, >= act_min (the type's: 127) */
} te_squared_difference_params_t;

typedef struct {
    te_broadcast_dims_t dims;
    int32_t input1_offset;     /**< minus input1's zero point, in [-127, 128] */
    int32_t input2_offset;     /**< minus input2's zero point, in [-127, 128] */
    int32_t output_multiplier; /**< Q31 multiplier, >= 0 */
    int32_t output_shift;      /**< in [-31, 15]: 255 * 255 << 15 still fits int32 */
    int32_t output_offset;     /**< the output zero point, in [-128, 127] */
    int32_t act_min;           /**< fused activation lower limit, >= -128 */
    int32_t act_max;           /**< fused activation upper limit, <= 127, >= act_min */
} te_mul_params_t;

/** MAXIMUM and MINIMUM: inputs and output share one quantisation, only shapes are needed. */
typedef struct {
    te_broadcast_dims_t dims;
} te_max_min_params_t;

/**
 * @param input1 int8 [dims.input1.n][h][w][c]
 * @param input2 int8 [dims.input2.n][h][w][c]
 * @param output int8 [dims.output.n][h][w][c]; may alias an input of the output's shape
 * @return TE_OK, or TE_ERR_ARG for null pointers, shapes that do not broadcast to the output,
 *         or offsets, shifts or limits outside the ranges above.
 */
te_status_t te_sub_s8(const te_sub_params_t *p, const int8_t *input1, const int8_t *input2,
                      int8_t *output);

/**
 * int16 SUB: offsets and output_offset 0, left_shift in [0, 15] (TFLite uses 15), act_min and
 * act_max in [-32768, 32767]; other fields as te_sub_s8.
 * @param input1 int16 [dims.input1.n][h][w][c]
 * @param input2 int16 [dims.input2.n][h][w][c]
 * @param output int16 [dims.output.n][h][w][c]; may alias an input of the output's shape
 * @return TE_OK, or TE_ERR_ARG as te_sub_s8.
 */
te_status_t te_sub_s16(const te_sub_params_t *p, const int16_t *input1, const int16_t *input2,
                       int16_t *output);

/** Arguments and return as te_sub_s8. */
te_status_t te_squared_difference_s8(const te_squared_difference_params_t *p,
                                     const int8_t *input1, const int8_t *input2, int8_t *output);

/** Arguments and return as te_sub_s8. */
te_status_t te_mul_s8(const te_mul_params_t *p, const int8_t *input1, const int8_t *input2,
                      int8_t *output);

/**
 * int16 MUL: offsets and output_offset 0 (as TFLM requires), output_shift in [-31, 0] (a product
 * of two int16 values reaches 2^30, so no left shift fits), act_min and act_max in
 * [-32768, 32767].
 * @param input1 int16 [dims.input1.n][h][w][c]
 * @param input2 int16 [dims.input2.n][h][w][c]
 * @param output int16 [dims.output.n][h][w][c]; may alias an input of the output's shape
 * @return TE_OK, or TE_ERR_ARG as te_mul_s8.
 */
te_status_t te_mul_s16(const te_mul_params_t *p, const int16_t *input1, const int16_t *input2,
                       int16_t *output);

/** Arguments and return as te_sub_s8 (only shapes are checked). */
te_status_t te_maximum_s8(const te_max_min_params_t *p, const int8_t *input1,
                          const int8_t *input2, int8_t *output);

/** Arguments and return as te_sub_s8 (only shapes are checked). */
te_status_t te_minimum_s8(const te_max_min_params_t *p, const int8_t *input1,
                          const int8_t *input2, int8_t *output);

#endif /* TE_ELEMENTWISE_H */
