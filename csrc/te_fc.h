/**
 * @file te_fc.h
 * @brief Fully connected layer (TFLite FULLY_CONNECTED), weights [out][in]: int8, and 16x8
 *        (int16 activations, int8 weights) through the _s16 entry points.
 *
 * acc = bias[o] + sum_i (input[i] + input_offset) * (weights[o][i] + filter_offset), then the
 * usual requantisation, as TFLite's reference_integer_ops::FullyConnected (per tensor) and
 * FullyConnectedPerChannel (per channel, which never applies a filter offset).
 */
#ifndef TE_FC_H
#define TE_FC_H

#include "te_common.h"

typedef struct {
    int32_t batches;       /**< rows of the input, >= 1 */
    int32_t in_features;   /**< accumulation depth, >= 1 */
    int32_t out_features;  /**< output channels, >= 1 */
    int32_t filter_offset; /**< minus the weights' zero point, in [-127, 128]; 0 if per channel */
    te_quant_t q;
    te_requant_t rq;       /**< indexed by output channel when per_channel */
} te_fully_connected_params_t;

/**
 * Fully connected layer over a batch of rows.
 * @param input   int8 [batches][in_features]
 * @param weights int8 [out_features][in_features]
 * @param bias    int32 [out_features], or NULL
 * @param output  int8 [batches][out_features]
 * @return TE_OK, or TE_ERR_ARG for null pointers, non-positive sizes, a filter offset outside
 *         [-127, 128], or a non-zero filter offset with per-channel requantisation.
 */
te_status_t te_fully_connected_s8(const te_fully_connected_params_t *p, const int8_t *input,
                                  const int8_t *weights, const int32_t *bias, int8_t *output);

/**
 * 16x8 fully connected layer (int16 input and output, int8 weights, int64 bias): int64 sums,
 * requantised by TFLite's int64 MultiplyByQuantizedMultiplier (te_requant16.h).
 * Domain: as te_fully_connected_s8, with q.input_offset == q.output_offset == 0 (symmetric
 * int16), INT16_MIN <= q.act_min <= q.act_max <= INT16_MAX, multipliers >= 0 and shifts in
 * [-31, TE_S64_MAX_SHIFT].
 * @param input   int16 [batches][in_features]
 * @param weights int8 [out_features][in_features]
 * @param bias    int64 [out_features], or NULL
 * @param output  int16 [batches][out_features]
 * @return TE_OK, or TE_ERR_ARG outside the domain.
 */
te_status_t te_fully_connected_s16(const te_fully_connected_params_t *p, const int16_t *input,
                                   const int8_t *weights, const int64_t *bias, int16_t *output);

/**
 * 16x8 fully connected layer with TFLM's int32 accumulator (an int32 bias, or no bias with the
 * options' quantized_bias_type INT32): sums wrap modulo 2^32, then the int32 rule. Arguments
 * and domain as te_fully_connected_s16 (any shift the int32 rule takes), except
 * @param bias int32 [out_features], or NULL
 */
te_status_t te_fully_connected_acc32_s16(const te_fully_connected_params_t *p,
                                         const int16_t *input, const int8_t *weights,
                                         const int32_t *bias, int16_t *output);

#endif /* TE_FC_H */
