/**
 * @file te_transpose.h
 * @brief TFLite TRANSPOSE (int8 and int16): output = input with its axes permuted, up to 5-D.
 *
 * The Python side folds the permutation into a gather: output axis k walks the input with
 * `step[k]` elements per index (the input stride of axis perm[k]). Output axes that are
 * contiguous in the input too are merged and unit axes dropped beforehand, so most calls run
 * on two or three axes, and an innermost step of 1 copies whole rows.
 */
#ifndef TE_TRANSPOSE_H
#define TE_TRANSPOSE_H

#include "te_common.h"

#define TE_TRANSPOSE_MAX_DIMS 5

typedef struct {
    int32_t count[TE_TRANSPOSE_MAX_DIMS]; /**< output shape, left-padded with 1s; each >= 1 */
    int32_t step[TE_TRANSPOSE_MAX_DIMS];  /**< input elements between neighbours along each
                                               output axis; each >= 0 */
    int32_t input_size;                   /**< elements in the input, >= 1 */
} te_transpose_params_t;

/**
 * output[i0..i4] (row-major over count) = input[sum_k i_k * step[k]].
 * @param input  int8 tensor of p->input_size elements
 * @param output int8 tensor of prod(count) elements; must not be the input's buffer
 * @return TE_OK, or TE_ERR_ARG for null pointers, output == input, a count below 1, a
 *         negative step or a gather that reads outside the input.
 */
te_status_t te_transpose_s8(const te_transpose_params_t *p, const int8_t *input,
                            int8_t *output);

/**
 * The same gather on int16 tensors (TFLite's 16x8 mode); counts and steps are in elements.
 * @param input  int16 tensor of p->input_size elements
 * @param output int16 tensor of prod(count) elements; must not be the input's buffer
 * @return as te_transpose_s8
 */
te_status_t te_transpose_s16(const te_transpose_params_t *p, const int16_t *input,
                             int16_t *output);

#endif /* TE_TRANSPOSE_H */
