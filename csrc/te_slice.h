/**
 * @file te_slice.h
 * @brief TFLite SLICE (a box cut out of a tensor, any rank up to 5 after merging) and its
 * inverse UPDATE_SLICE (a box written into a tensor, TFLite's DYNAMIC_UPDATE_SLICE), the data
 * movement of patch-based inference. Element size is a parameter, so the same kernels move
 * int8 and int16 activations and float32 inputs.
 *
 * The Python side turns the box into rows: `count` is the box's shape after unit axes are
 * dropped and axes that are whole in the big tensor are merged into the next outer one,
 * left-padded with 1s; `step` gives, per axis, the elements between neighbours in the big
 * tensor; `offset` is the big tensor's element at the box's origin. The innermost axis is
 * always contiguous (step 1), so every row is one memmove.
 */
#ifndef TE_SLICE_H
#define TE_SLICE_H

#include "te_common.h"

#define TE_SLICE_MAX_DIMS 5

typedef struct {
    int32_t count[TE_SLICE_MAX_DIMS]; /**< the box's shape, left-padded with 1s; each >= 1 */
    int32_t step[TE_SLICE_MAX_DIMS];  /**< big-tensor elements between neighbours per axis,
                                           each >= 0; step[4] == 1 */
    int32_t offset;                   /**< big-tensor element at the box's origin, >= 0 */
    int32_t whole_size;               /**< elements in the big tensor, >= 1 */
    int32_t elem_bytes;               /**< 1 for int8, 2 for int16, 4 for float32 */
} te_slice_params_t;

/** UPDATE_SLICE takes the same description of the box, within the output. */
typedef te_slice_params_t te_update_slice_params_t;

/**
 * output (the box, row-major) = input[offset + sum_k i_k * step[k]].
 * @return TE_OK, or TE_ERR_ARG for null pointers or a box outside the input.
 */
te_status_t te_slice(const te_slice_params_t *p, const void *input, void *output);

/**
 * output = canvas with the box replaced by `update` (row-major, the box's shape).
 * @param canvas the tensor so far: NULL (nothing written yet), or the same pointer as output
 *               (in place, the usual case), or another buffer that is copied first.
 * @return TE_OK, or TE_ERR_ARG for null pointers or a box outside the output.
 */
te_status_t te_update_slice(const te_update_slice_params_t *p, const void *canvas,
                            const void *update, void *output);

#endif /* TE_SLICE_H */
