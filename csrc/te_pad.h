/**
 * @file te_pad.h
 * @brief int8 and int16 constant padding (TFLite PAD without constant_values), up to 4-D.
 *
 * Tensors of lower rank are extended to 4-D with leading dimensions of 1 and no padding, as
 * TFLite's reference Pad does. Input elements are copied unchanged. The pad value is what the
 * caller gives: TFLM pads int8 with the output zero point (real 0.0) and int16 with 0 (which
 * is real 0.0 too, as 16x8 activations are symmetric).
 */
#ifndef TE_PAD_H
#define TE_PAD_H

#include "te_common.h"

typedef struct {
    te_dims_t input;        /**< the input's 4 dimensions (n, h, w, c = dims 0..3), each >= 1 */
    te_dims_t output;       /**< output[i] == input[i] + pad_before[i] + pad_after[i] */
    int32_t pad_before[4];  /**< leading padding per dimension, >= 0 */
    int32_t pad_after[4];   /**< trailing padding per dimension, >= 0 */
    int32_t pad_value;      /**< value of the padding, in the element type's range */
} te_pad_params_t;

/**
 * @param input  int8, p->input dims, row-major.
 * @param output int8, p->output dims, row-major; must not overlap input.
 * @return TE_OK, or TE_ERR_ARG for null pointers, negative padding or inconsistent dimensions.
 */
te_status_t te_pad_s8(const te_pad_params_t *p, const int8_t *input, int8_t *output);

/**
 * The same padding of an int16 tensor (TFLite's 16x8 mode); pad_value in -32768..32767.
 * @param input  int16, p->input dims, row-major.
 * @param output int16, p->output dims, row-major; must not overlap input.
 * @return as te_pad_s8
 */
te_status_t te_pad_s16(const te_pad_params_t *p, const int16_t *input, int16_t *output);

#endif /* TE_PAD_H */
