/**
 * @file te_softmax.h
 * @brief int8 softmax over the last axis (TFLite SOFTMAX, int8 in, int8 out).
 *
 * Bit-exact with TFLM's reference kernel for int8 input and int8 output (reference_ops::Softmax,
 * gemmlowp fixed point); tinyengine/ops/softmax.py is the specification and computes the
 * parameters. The output is in TFLite's fixed int8 softmax format: scale 1/256, zero point -128.
 */
#ifndef TE_SOFTMAX_H
#define TE_SOFTMAX_H

#include "te_common.h"

typedef struct {
    int32_t outer;            /**< number of rows (product of all but the last dimension), >= 0 */
    int32_t depth;            /**< row length (the last dimension), >= 1 */
    int32_t input_multiplier; /**< Q31 multiplier of beta * input_scale * 2^26, > 0 */
    int32_t input_left_shift; /**< its left shift, in [0, 31] */
    int32_t diff_min;         /**< x - max(row) below this counts as exp = 0; <= 0 */
} te_softmax_params_t;

/**
 * Softmax of each row of `outer` x `depth` int8 values.
 * @param input  int8, outer * depth values, row-major (the softmax axis is contiguous).
 * @param output int8, same layout; may be the same pointer as input (in place), must not
 *               overlap it otherwise.
 * @return TE_OK; TE_ERR_ARG for null pointers or parameters outside their ranges, and for a row
 *         whose sum of exponentials leaves the Q12.19 accumulator's range (TFLM aborts there;
 *         needs 512 or more values near the row maximum). Rows before it are then written.
 */
te_status_t te_softmax_s8(const te_softmax_params_t *p, const int8_t *input, int8_t *output);

#endif /* TE_SOFTMAX_H */
