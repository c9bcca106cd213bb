/**
 * @file te_depth_space.h
 * @brief TFLite DEPTH_TO_SPACE and SPACE_TO_DEPTH on int8 NHWC tensors: pure byte moves.
 *
 * With block size b, DEPTH_TO_SPACE takes an input of C * b * b channels to an output b times
 * taller and wider with C channels:
 *   out[n, h, w, c] = in[n, h / b, w / b, ((h % b) * b + w % b) * C + c]
 * and SPACE_TO_DEPTH is its inverse (TFLite's reference_ops::DepthToSpace / SpaceToDepth; the
 * channel order is ONNX's DCR mode). Input and output share one quantisation.
 */
#ifndef TE_DEPTH_SPACE_H
#define TE_DEPTH_SPACE_H

#include "te_common.h"

typedef struct {
    te_dims_t input;    /**< NHWC dims of the input, each >= 1 */
    te_dims_t output;   /**< NHWC dims of the output, each >= 1 */
    int32_t block_size; /**< b >= 1 */
} te_depth_space_params_t;

/**
 * DEPTH_TO_SPACE.
 * @param p      shapes with output = (n, h * b, w * b, c / (b * b)) of input (n, h, w, c)
 * @param input  NHWC int8 input
 * @param output NHWC int8 output; must not overlap the input
 * @return TE_OK, or TE_ERR_ARG for null pointers or inconsistent shapes.
 */
te_status_t te_depth_to_space_s8(const te_depth_space_params_t *p, const int8_t *input,
                                 int8_t *output);

/**
 * SPACE_TO_DEPTH.
 * @param p      shapes with output = (n, h / b, w / b, c * b * b) of input (n, h, w, c)
 * @param input  NHWC int8 input
 * @param output NHWC int8 output; must not overlap the input
 * @return TE_OK, or TE_ERR_ARG for null pointers or inconsistent shapes.
 */
te_status_t te_space_to_depth_s8(const te_depth_space_params_t *p, const int8_t *input,
                                 int8_t *output);

#endif /* TE_DEPTH_SPACE_H */
