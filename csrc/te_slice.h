/**
 * @file te_slice.h
 * @brief Window copies for patch-based inference: cut a window out of an NHWC tensor (TFLite
 * SLICE) and write a window into one (TFLite DYNAMIC_UPDATE_SLICE). Element size is a
 * parameter, so the same kernels move int8 activations and float32 inputs.
 */
#ifndef TE_SLICE_H
#define TE_SLICE_H

#include "te_common.h"

typedef struct {
    te_dims_t input;     /**< the tensor the window is cut from */
    te_dims_t output;    /**< the window; n and c equal the input's */
    int32_t begin_h;     /**< first row of the window in the input, >= 0 */
    int32_t begin_w;     /**< first column, >= 0 */
    int32_t elem_bytes;  /**< 1 for int8, 4 for float32 */
} te_slice_params_t;

/**
 * output[n][y][x][c] = input[n][begin_h + y][begin_w + x][c].
 * @return TE_OK, or TE_ERR_ARG for null pointers or a window outside the input.
 */
te_status_t te_slice(const te_slice_params_t *p, const void *input, void *output);

typedef struct {
    te_dims_t output;    /**< the whole tensor being assembled */
    te_dims_t update;    /**< the window written into it; n and c equal the output's */
    int32_t begin_h;     /**< first row of the window in the output */
    int32_t begin_w;     /**< first column */
    int32_t elem_bytes;  /**< 1 for int8, 4 for float32 */
} te_update_slice_params_t;

/**
 * output = canvas with the window at (begin_h, begin_w) replaced by `update`.
 * @param canvas the tensor so far: NULL (nothing written yet), or the same pointer as output
 *               (in place, the usual case), or another buffer that is copied first.
 * @return TE_OK, or TE_ERR_ARG for null pointers or a window outside the output.
 */
te_status_t te_update_slice(const te_update_slice_params_t *p, const void *canvas,
                            const void *update, void *output);

#endif /* TE_SLICE_H */
