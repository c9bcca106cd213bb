/**
 * @file te_logistic_tanh.h
 * @brief LOGISTIC and TANH (TFLite LOGISTIC, TANH): int8 by table lookup, int16 by
 *        interpolation in TFLite's sigmoid table.
 *
 * For int8 input TFLite's fixed-point sigmoid and tanh depend on the input byte alone, so the
 * code generator evaluates them once for all 256 inputs (tinyengine/ops/logistic_tanh.py, the
 * specification) and the kernels look each element up: y = table[x + 128]. LOGISTIC's output
 * has scale 1/256 and zero point -128, TANH's 1/128 and 0.
 *
 * The int16 kernels (TFLite's 16x8 mode) follow reference_integer_ops::Logistic / ::Tanh for
 * int16: v = (x * input_multiplier + 2^(input_shift - 1)) >> input_shift puts 1.0 at 3 * 2^12
 * (TANH: its argument doubled), |v| indexes the 256-entry table of sigmoid(i / 24) in Q0.16 with
 * 9 (LOGISTIC) or 8 (TANH) fraction bits interpolated, and the sign of v mirrors the result.
 * Output scale 2^-15, zero point 0; input zero point 0.
 */
#ifndef TE_LOGISTIC_TANH_H
#define TE_LOGISTIC_TANH_H

#include "te_common.h"

typedef struct {
    int32_t size; /**< elements, >= 1 */
} te_lut_params_t;

/**
 * @param input  int8 [size]
 * @param table  int8 [256]: the output for input -128 .. 127
 * @param output int8 [size]; may be the input buffer (each element is read before it is written)
 * @return TE_OK, or TE_ERR_ARG for null pointers or a size below 1.
 */
te_status_t te_logistic_s8(const te_lut_params_t *p, const int8_t *input, const int8_t *table,
                           int8_t *output);

/** TANH: as te_logistic_s8, with TANH's table. */
te_status_t te_tanh_s8(const te_lut_params_t *p, const int8_t *input, const int8_t *table,
                       int8_t *output);

typedef struct {
    int32_t size;             /**< elements, >= 1 */
    int32_t input_multiplier; /**< in [1, 32767] */
    int32_t input_shift;      /**< right shift after the multiplication, in [0, 31] */
} te_sigmoid16_params_t;

/**
 * int16 LOGISTIC.
 * @param input  int16 [size], scale s_in, zero point 0
 * @param table  uint16 [256]: sigmoid(i / 24) in Q0.16 (TFLite's sigmoid_table_uint16)
 * @param output int16 [size], scale 2^-15, zero point 0; may be the input buffer
 * @return TE_OK, or TE_ERR_ARG for null pointers or parameters outside the ranges above.
 */
te_status_t te_logistic_s16(const te_sigmoid16_params_t *p, const int16_t *input,
                            const uint16_t *table, int16_t *output);

/** int16 TANH: as te_logistic_s16, with TANH's rescaled input and mirroring. */
te_status_t te_tanh_s16(const te_sigmoid16_params_t *p, const int16_t *input,
                        const uint16_t *table, int16_t *output);

#endif /* TE_LOGISTIC_TANH_H */
