/**
 * @file te_fc.h
 * @brief int8 fully connected layer (TFLite FULLY_CONNECTED), weights [out][in].
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

#endif /* TE_FC_H */
