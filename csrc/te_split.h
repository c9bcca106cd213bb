/**
 * @file te_split.h
 * @brief TFLite SPLIT and SPLIT_V (int8, int16): a tensor cut along one axis into consecutive
 * pieces, one output tensor each.
 *
 * Seen from the split axis, the input is `outer` repetitions of the pieces laid side by side:
 * piece i contributes `chunk[i]` contiguous elements (its size along the axis times the
 * elements of the axes inside it) to each repetition.
 */
#ifndef TE_SPLIT_H
#define TE_SPLIT_H

#include "te_common.h"

#define TE_SPLIT_MAX_OUTPUTS 8

typedef struct {
    int32_t outer;                         /**< product of the axes outside the split, >= 1 */
    int32_t num_outputs;                   /**< 1..TE_SPLIT_MAX_OUTPUTS */
    int32_t chunk[TE_SPLIT_MAX_OUTPUTS];   /**< elements of output i per repetition, >= 1 for
                                                i < num_outputs */
} te_split_params_t;

/**
 * output_i[k * chunk[i] + j] = input[k * sum(chunk) + sum(chunk[:i]) + j].
 * @param input   int8 tensor of outer * sum(chunk) elements
 * @param out0..out7 the outputs in order; those at or past num_outputs are ignored (NULL)
 * @return TE_OK, or TE_ERR_ARG for a null pointer among the first num_outputs outputs or the
 *         input, or parameters outside their range.
 */
te_status_t te_split_s8(const te_split_params_t *p, const int8_t *input, int8_t *out0,
                        int8_t *out1, int8_t *out2, int8_t *out3, int8_t *out4, int8_t *out5,
                        int8_t *out6, int8_t *out7);

/**
 * The same split of an int16 tensor (TFLite's 16x8 mode); chunks count elements.
 * @return as te_split_s8
 */
te_status_t te_split_s16(const te_split_params_t *p, const int16_t *input, int16_t *out0,
                         int16_t *out1, int16_t *out2, int16_t *out3, int16_t *out4,
                         int16_t *out5, int16_t *out6, int16_t *out7);

#endif /* TE_SPLIT_H */
