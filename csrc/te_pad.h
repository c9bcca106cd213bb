/**
 * @file te_pad.h
 * @brief int8 constant padding (TFLite PAD without constant_values), up to 4-D.
 *
 * Tensors of lower rank are extended to 4-D with leading dimensions of 1 and no padding, as
 * TFLite's reference Pad does. The pad value is the output zero point (real 0.0); input bytes
 * are copied unchanged.
 */
#ifndef TE_PAD_H
#define TE_PAD_H

#include "te_common.h"

typedef struct {
    te_dims_t input;        /**< the input's 4 dimensions (n, h, w, c = dims 0..3), each >= 1 */
    te_dims_t output;       /**< output[i] == input[i] + pad_before[i] + pad_after[i] */
    int32_t pad_before[4];  /**< leading padding per dimension, >= 0 */
    int32_t pad_after[4];   /**< trailing padding per dimension, >= 0 */
    int32_t pad_value;      /**< value of the padding, -128..127 (the output zero point) */
} te_pad_params_t;

/**
 * @param input  int8, p->input dims, row-major.
 * @param output int8, p->output dims, row-major; must not overlap input.
 * @return TE_OK, or TE_ERR_ARG for null pointers, negative padding or inconsistent dimensions.
 */
te_status_t te_pad_s8(const te_pad_params_t *p, const int8_t *input, int8_t *output);

#endif /* TE_PAD_H */
