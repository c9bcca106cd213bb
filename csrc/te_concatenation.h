/**
 * @file te_concatenation.h
 * @brief TFLite CONCATENATION of int8 or int16 tensors along one axis: a pure copy.
 *
 * TFLM's int8 CONCATENATION requires every input to carry the output's scale and zero point and
 * a fused activation of NONE, so nothing is requantised; its int16 one copies too (zero points
 * 0), and the engine gives it one scale as well. Any rank and axis reduce to one loop:
 * the output is `outer` rows, and row k holds row k of every input in turn, input i
 * contributing `copy_sizes[i]` elements (its size along the axis times the product of the dims
 * after the axis).
 *
 * The number of tensors varies from op to op, so the entry points are variadic: the generated
 * code passes every tensor pointer explicitly, each cast to exactly the documented type.
 */
#ifndef TE_CONCATENATION_H
#define TE_CONCATENATION_H

#include "te_common.h"

typedef struct {
    int32_t n_inputs;           /**< number of inputs, >= 1 */
    int32_t outer;              /**< product of the output dims before the axis, >= 1 */
    int32_t output_row;         /**< elements of one output row: the sum of copy_sizes */
    const int32_t *copy_sizes;  /**< n_inputs counts, each >= 1: input i's elements per row */
} te_concatenation_params_t;

/**
 * Concatenate int8 tensors.
 * @param p      geometry, as documented on te_concatenation_params_t
 * @param input0 the first input (outer x copy_sizes[0] elements)
 * @param ...    the other n_inputs - 1 inputs, each a `const int8_t *` (outer x copy_sizes[i]),
 *               then the output, an `int8_t *` (outer x output_row elements). An input that
 *               already sits at its place in the output (outer == 1 and input i ==
 *               output + sum of copy_sizes[j < i]) is left where it is.
 * @return TE_OK, or TE_ERR_ARG for a null pointer or a parameter outside its range (then
 *         nothing is written).
 */
te_status_t te_concatenation_s8(const te_concatenation_params_t *p, const int8_t *input0, ...);

/**
 * Concatenate int16 tensors (TFLite's 16x8 mode): as te_concatenation_s8, each input passed as
 * a `const int16_t *` and the output as an `int16_t *`; sizes count elements.
 */
te_status_t te_concatenation_s16(const te_concatenation_params_t *p, const int16_t *input0,
                                 ...);

#endif /* TE_CONCATENATION_H */
