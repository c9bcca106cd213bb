/**
 * @file te_add.h
 * @brief int8 and int16 element-wise addition with 4-D broadcasting (TFLite ADD).
 *
 * Per element, as TFLite's reference AddElementwise (double rounding), for both types:
 *   s_k = MultiplyByQuantizedMultiplierSmallerThanOneExp((x_k + offset_k) << left_shift, m_k, sh_k)
 *   y   = MultiplyByQuantizedMultiplierSmallerThanOneExp(s_1 + s_2, m_out, sh_out) + output_offset
 * clamped to [act_min, act_max]. TFLite uses left_shift 20 for int8 and 15 for int16 (its
 * 16x8 mode; TFLM never takes TFLite's power-of-two int16 path). The ranges below are int8's;
 * te_add_s16 documents its own.
 */
#ifndef TE_ADD_H
#define TE_ADD_H

#include "te_common.h"

/** One input's shape and rescaling. */
typedef struct {
    te_dims_t dims;     /**< 4-D shape, left-padded with 1s; each dim is 1 or the output's */
    int32_t offset;     /**< minus the zero point, in [-127, 128] */
    int32_t multiplier; /**< Q31 multiplier, >= 0 */
    int32_t shift;      /**< in [-31, 0] (a right shift) */
} te_add_input_t;

typedef struct {
    te_add_input_t input1;
    te_add_input_t input2;
    te_dims_t output;          /**< 4-D output shape, each dim >= 1 */
    int32_t left_shift;        /**< in [0, 20]; TFLite uses 20 for int8 */
    int32_t output_multiplier; /**< Q31 multiplier, >= 0 */
    int32_t output_shift;      /**< in [-31, 0] */
    int32_t output_offset;     /**< the output zero point */
    int32_t act_min;           /**< fused activation lower limit, >= -128 */
    int32_t act_max;           /**< fused activation upper limit, <= 127, >= act_min */
} te_add_params_t;

/**
 * Element-wise addition; an input dimension of 1 broadcasts along the output's.
 * @param input1 int8 [input1.dims.n][h][w][c]
 * @param input2 int8 [input2.dims.n][h][w][c]
 * @param output int8 [output.n][h][w][c]; may alias an input of the output's shape
 * @return TE_OK, or TE_ERR_ARG for null pointers, shapes that do not broadcast to the output,
 *         or offsets, shifts or limits outside the ranges above.
 */
te_status_t te_add_s8(const te_add_params_t *p, const int8_t *input1, const int8_t *input2,
                      int8_t *output);

/**
 * int16 element-wise addition (TFLite's 16x8 ADD), the same arithmetic as te_add_s8 with these
 * ranges: input and output offsets 0 (16x8 tensors are symmetric), left_shift in [0, 15]
 * (TFLite uses 15), act_min and act_max in [-32768, 32767]. |x| << 15 <= 2^30, so neither the
 * shifted inputs nor their rescaled sum can leave int32.
 * @param input1 int16 [input1.dims.n][h][w][c]
 * @param input2 int16 [input2.dims.n][h][w][c]
 * @param output int16 [output.n][h][w][c]; may alias an input of the output's shape
 * @return TE_OK, or TE_ERR_ARG as te_add_s8.
 */
te_status_t te_add_s16(const te_add_params_t *p, const int16_t *input1, const int16_t *input2,
                       int16_t *output);

#endif /* TE_ADD_H */
