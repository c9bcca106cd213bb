/**
 * @file te_softmax.h
 * @brief Softmax over the last axis (TFLite SOFTMAX): int8 -> int8, int8 -> int16 and
 *        int16 -> int16.
 *
 * Bit-exact with TFLM's reference kernels; tinyengine/ops/softmax.py is the specification and
 * computes the parameters and tables.
 * - int8 input: reference_ops::Softmax<int8_t, OutputT> in gemmlowp fixed point. The output is
 *   in TFLite's fixed softmax format: int8 scale 1/256 and zero point -128, or int16 scale
 *   1/65536 and zero point -32768.
 * - int16 input: reference_ops::SoftmaxInt16, exp and 1 / (1 + x) read from two 513-entry
 *   interpolated tables (computed by the code generator; integer arithmetic only here). The
 *   output has scale 1/32768 and zero point 0.
 */
#ifndef TE_SOFTMAX_H
#define TE_SOFTMAX_H

#include "te_common.h"

/** Most values per row of te_softmax_s16 (their sum of exps must fit int32). */
#define TE_SOFTMAX_S16_MAX_DEPTH 65536

typedef struct {
    int32_t outer;            /**< number of rows (product of all but the last dimension), >= 0 */
    int32_t depth;            /**< row length (the last dimension), >= 1 */
    int32_t input_multiplier; /**< Q31 multiplier of beta * input_scale * 2^26, > 0 */
    int32_t input_left_shift; /**< its left shift, in [0, 31] */
    int32_t diff_min;         /**< x - max(row) below this counts as exp = 0; <= 0 */
} te_softmax_params_t;

/**
 * Softmax of each row of `outer` x `depth` int8 values, int8 out.
 * @param input  int8, outer * depth values, row-major (the softmax axis is contiguous).
 * @param output int8, same layout; may be the same pointer as input (in place), must not
 *               overlap it otherwise.
 * @return TE_OK; TE_ERR_ARG for null pointers or parameters outside their ranges, and for a row
 *         whose sum of exponentials leaves the Q12.19 accumulator's range (TFLM aborts there;
 *         needs 512 or more values near the row maximum). Rows before it are then written.
 */
te_status_t te_softmax_s8(const te_softmax_params_t *p, const int8_t *input, int8_t *output);

/**
 * Softmax of int8 rows into int16 probabilities (scale 1/65536, zero point -32768).
 * @param input  int8, outer * depth values, row-major.
 * @param output int16, same layout; must not overlap input.
 * @return as te_softmax_s8.
 */
te_status_t te_softmax_s8_s16(const te_softmax_params_t *p, const int8_t *input,
                              int16_t *output);

typedef struct {
    int32_t outer;            /**< number of rows, >= 0 */
    int32_t depth;            /**< row length, in [1, TE_SOFTMAX_S16_MAX_DEPTH] */
    int32_t input_multiplier; /**< Q31 multiplier of input_scale * beta * 65535 / 10, >= 0 */
    int32_t input_shift;      /**< its shift, in [-31, 30]; > 0 is a left shift */
} te_softmax_s16_params_t;

/**
 * Softmax of each row of int16 values (zero point 0) into Q0.15 probabilities.
 * @param input     int16, outer * depth values, row-major.
 * @param exp_lut   int16 [513]: exp on [-10, 0] (tinyengine's exp_lut()).
 * @param recip_lut int16 [513]: 1 / (1 + x) on [0, 1] (one_over_one_plus_x_lut()).
 * @param output    int16, same layout, scale 1/32768, zero point 0; may be the same pointer as
 *                  input (each row's exps wait in its output row), must not overlap it
 *                  otherwise.
 * @return TE_OK, or TE_ERR_ARG for null pointers, parameters outside their ranges, or tables
 *         that give a row's exps a sum below 2.
 */
te_status_t te_softmax_s16(const te_softmax_s16_params_t *p, const int16_t *input,
                           const int16_t *exp_lut, const int16_t *recip_lut, int16_t *output);

#endif /* TE_SOFTMAX_H */
