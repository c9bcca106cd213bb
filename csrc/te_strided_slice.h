/**
 * @file te_strided_slice.h
 * @brief TFLite STRIDED_SLICE (int8 and int16): every stride-th element between begin and end
 * per axis, strides possibly negative, shrunk axes dropped from the output's shape.
 *
 * The Python side resolves TFLite's masks, negative indices and clamping (TFLM's
 * StridedSliceStartForAxis / StridedSliceEndForAxis) into a gather: the input element of output
 * element 0 (`offset`) and, per output axis, how many elements it has and how far apart they are
 * in the input (`step`, negative for a negative stride). Contiguous axes are merged beforehand.
 */
#ifndef TE_STRIDED_SLICE_H
#define TE_STRIDED_SLICE_H

#include "te_common.h"

#define TE_STRIDED_SLICE_MAX_DIMS 5

typedef struct {
    int32_t count[TE_STRIDED_SLICE_MAX_DIMS]; /**< elements per output axis, left-padded with
                                                   1s; each >= 1 */
    int32_t step[TE_STRIDED_SLICE_MAX_DIMS];  /**< input elements between neighbours along
                                                   each axis; any sign */
    int32_t offset;                           /**< input element of output element 0, >= 0 */
    int32_t input_size;                       /**< elements in the input, >= 1 */
} te_strided_slice_params_t;

/**
 * output[i0..i4] (row-major over count) = input[offset + sum_k i_k * step[k]].
 * @param input  int8 tensor of p->input_size elements
 * @param output int8 tensor of prod(count) elements; must not be the input's buffer
 * @return TE_OK, or TE_ERR_ARG for null pointers, output == input, a count below 1 or a
 *         gather that reads outside the input.
 */
te_status_t te_strided_slice_s8(const te_strided_slice_params_t *p, const int8_t *input,
                                int8_t *output);

/**
 * The same gather on int16 tensors (TFLite's 16x8 mode); offset, counts and steps are in
 * elements.
 * @return as te_strided_slice_s8
 */
te_status_t te_strided_slice_s16(const te_strided_slice_params_t *p, const int16_t *input,
                                 int16_t *output);

#endif /* TE_STRIDED_SLICE_H */
