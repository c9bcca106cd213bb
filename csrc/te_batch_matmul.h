/**
 * @file te_batch_matmul.h
 * @brief int8 batched matrix product of two activations (TFLite BATCH_MATMUL).
 *
 * For every batch index and output element, as TFLite's reference_ops::BatchMatMul (int8):
 *   acc = sum_k (lhs[i][k] + lhs_offset) * (rhs[k][j] + rhs_offset)
 *   out[i][j] = clamp(MultiplyByQuantizedMultiplier(acc, multiplier, shift) + output_offset)
 * where lhs[i][k] reads the stored matrix transposed when adj_x is set and rhs[k][j] when adj_y
 * is set. The accumulator wraps modulo 2^32 as TFLite's int32 sum does. Up to three batch
 * dimensions (TFLite's rank 5) broadcast: an operand of extent 1 along a batch dimension has
 * stride 0 there.
 */
#ifndef TE_BATCH_MATMUL_H
#define TE_BATCH_MATMUL_H

#include "te_common.h"

#define TE_BATCH_MATMUL_BATCH_DIMS 3

typedef struct {
    int32_t batch[TE_BATCH_MATMUL_BATCH_DIMS];      /**< output batch dims, outer first, >= 1 */
    int32_t lhs_stride[TE_BATCH_MATMUL_BATCH_DIMS]; /**< elements between lhs matrices, >= 0 */
    int32_t rhs_stride[TE_BATCH_MATMUL_BATCH_DIMS]; /**< same for rhs; 0 where broadcast */
    int32_t rows;   /**< output rows, >= 1 */
    int32_t cols;   /**< output columns, >= 1 */
    int32_t depth;  /**< accumulation depth, >= 1 */
    int32_t adj_x;  /**< 1: lhs is stored [depth][rows], 0: [rows][depth] */
    int32_t adj_y;  /**< 1: rhs is stored [cols][depth], 0: [depth][cols] */
    te_quant_t q;   /**< input_offset: minus the lhs zero point, in [-127, 128] */
    int32_t rhs_offset; /**< minus the rhs zero point, in [-127, 128] */
    int32_t multiplier; /**< Q31 output multiplier, >= 0 */
    int32_t shift;      /**< its shift, > 0 a left shift, in [-31, 30] */
} te_batch_matmul_params_t;

/**
 * Batched matrix product.
 * @param lhs    int8 matrices of rows x depth elements (stored as adj_x says), batch-strided
 * @param rhs    int8 matrices of depth x cols elements (stored as adj_y says), batch-strided
 * @param output int8 [batch[0]][batch[1]][batch[2]][rows][cols]; must not alias an input
 * @return TE_OK, or TE_ERR_ARG for a NULL pointer, a non-positive size, a negative stride, or
 *         an offset, shift or limit outside the ranges above.
 */
te_status_t te_batch_matmul_s8(const te_batch_matmul_params_t *p, const int8_t *lhs,
                               const int8_t *rhs, int8_t *output);

#endif /* TE_BATCH_MATMUL_H */
