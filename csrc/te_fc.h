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
 * The paths of te_fully_connected_s8, each also a public entry point of its own. The path
 * depends on the layer's shapes and constant parameters only, so the code generator picks it
 * (tinyengine/ops/fully_connected.py, simd_path, by te_fully_connected_path_s8's rule) and calls
 * that entry point: with -ffunction-sections and --gc-sections a model links the paths its
 * layers take and no other. Without TE_SIMD every entry point runs the portable loop. With it,
 * a SIMD path refuses a layer the rule does not send to it (TE_ERR_ARG). Arguments as
 * te_fully_connected_s8.
 */
typedef enum {
    TE_FC_PATH_PORTABLE = 0,  /**< te_fully_connected_portable_s8: TFLite's loop */
    TE_FC_PATH_GENERAL = 1,   /**< te_fully_connected_general_s8: per channel, or a per-tensor
                                   multiplier or shift outside the fast rule's domain */
    TE_FC_PATH_ONE_IN = 2,    /**< te_fully_connected_one_in_s8: one input feature, a bias */
    TE_FC_PATH_FEW = 3,       /**< te_fully_connected_few_s8: fewer than four outputs */
    TE_FC_PATH_PER_TENSOR = 4 /**< te_fully_connected_per_tensor_s8: the rest */
} te_fc_path_t;

/**
 * The path te_fully_connected_s8 takes for these params and bias in this build: without TE_SIMD
 * the portable loop; else per channel, a negative multiplier or a shift outside [-22, -1]:
 * general; one input feature, no filter offset and a bias: one_in; fewer than four outputs and
 * no filter offset: few; else per_tensor. p must pass the kernel's argument checks.
 */
te_fc_path_t te_fully_connected_path_s8(const te_fully_connected_params_t *p,
                                        const int32_t *bias);

te_status_t te_fully_connected_portable_s8(const te_fully_connected_params_t *p,
                                           const int8_t *input, const int8_t *weights,
                                           const int32_t *bias, int8_t *output);
te_status_t te_fully_connected_general_s8(const te_fully_connected_params_t *p,
                                          const int8_t *input, const int8_t *weights,
                                          const int32_t *bias, int8_t *output);
te_status_t te_fully_connected_one_in_s8(const te_fully_connected_params_t *p,
                                         const int8_t *input, const int8_t *weights,
                                         const int32_t *bias, int8_t *output);
te_status_t te_fully_connected_few_s8(const te_fully_connected_params_t *p,
                                      const int8_t *input, const int8_t *weights,
                                      const int32_t *bias, int8_t *output);
te_status_t te_fully_connected_per_tensor_s8(const te_fully_connected_params_t *p,
                                             const int8_t *input, const int8_t *weights,
                                             const int32_t *bias, int8_t *output);

/**
 * Fully connected layer with the weights rearranged by the code generator
 * (tinyengine/ops/fully_connected.py, interleave4) for one SIMD loop over four rows at a time
 * with a single weight pointer, and the input offset folded into the bias. Never chosen at run
 * time (the layout differs): the code generator calls it for a layer whose filter offset is 0
 * and whose in_features is a multiple of 4.
 * @param weights int32 words, each four weights of a row (the first in the low byte): for each
 *                block of rows o .. o + 3 below out_features & ~3 and each four inputs
 *                i .. i + 3, the four rows' words in row order; then the last
 *                out_features % 4 rows, row after row.
 * @param bias    int32 [out_features]: bias[o] + input_offset * (sum of row o's weights), modulo
 *                2^32; q.input_offset is not read.
 * @return TE_OK, or TE_ERR_ARG where te_fully_connected_s8 returns it, for a NULL bias, a
 *         filter offset other than 0, or in_features not a multiple of 4.
 */
te_status_t te_fully_connected_i4_s8(const te_fully_connected_params_t *p, const int8_t *input,
                                     const int32_t *weights, const int32_t *bias,
                                     int8_t *output);

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
