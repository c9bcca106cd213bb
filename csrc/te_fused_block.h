/**
 * @file te_fused_block.h
 * @brief An inverted-residual block (pointwise expand -> depthwise -> pointwise project,
 *        optionally + the block's input) run one output row at a time, so that the expanded
 *        tensor only ever exists as a window of the rows one depthwise output row reads.
 *
 * For each output row t (window rows y0 = t * stride_h - pad_h .. y0 + span - 1, with
 * span = (filter.h - 1) * dilation_h + 1): the window's rows shift up by stride_h (a memmove of
 * the rows still in it), the new rows are expanded into it by te_conv2d_1x1_s8 (rows above or
 * below the image are filled with the depthwise input's zero point, which contributes exactly 0,
 * as TFLite's padding does), te_depthwise_conv_wrapper_s8 computes the depthwise row from the
 * window with pad_h 0, and te_conv2d_1x1_s8 projects it into the output row (through a row of
 * scratch and te_add_s8 with the block's input row when there is a residual). The result is
 * bit-exact with the three (four) ops run in turn: each member kernel sees exactly the values it
 * would see run whole. The parameter structs are the members' own, for the whole tensors; the
 * kernel derives the row-sized ones from them.
 *
 * The output may overwrite the input (output == input) when an output row is no longer than an
 * input row: output row t then lands on input rows <= t, all expanded already, and the residual
 * reads input row t just before output row t is written over it.
 *
 * mcunet-in3's 44x44 blocks (16 -> 80 -> 16 channels, 3x3 to 7x7) hold 154,880 B of expanded
 * tensor unfused; fused, the window is at most 7 x 44 x 80 = 24,640 B.
 * tinyengine/ops/fused_block.py is the Python twin (scratch size, domain).
 */
#ifndef TE_FUSED_BLOCK_H
#define TE_FUSED_BLOCK_H

#include "te_add.h"
#include "te_common.h"
#include "te_conv.h"
#include "te_depthwise.h"

typedef struct {
    te_conv2d_params_t expand;      /**< the expansion, whole tensor: 1x1, stride 1, no pad */
    te_depthwise_conv_params_t dw;  /**< the depthwise convolution, whole tensor */
    te_conv2d_params_t project;     /**< the projection, whole tensor: 1x1, stride 1, no pad */
    te_add_params_t add;            /**< the residual add, whole tensor (unread without one) */
    int32_t residual;               /**< 0: none; 1: the add's input1 is the block's input and
                                         input2 the projection; 2: the other way round */
} te_fused_block_params_t;

/** Scratch bytes te_fused_block_s8 needs: the window of span x expand.output.w x
 * expand.output.c, one depthwise output row and, with a residual, one projected row, each
 * rounded up to a multiple of 4. 0 for a NULL p. */
int32_t te_fused_block_get_buffer_size(const te_fused_block_params_t *p);

/**
 * The block. Domain: the members' shapes chain (expand.output == dw.input,
 * dw.output == project.input), the depthwise input zero point is the expansion's output zero
 * point, 0 <= dw.pad_h <= span - 1 and every output row's window reaches the image; with a
 * residual, the add's operands and output have the project's output shape, which is the
 * block input's (or its element count as one flat shape, as ADD's emit gives equal
 * shapes). The member kernels check their own domains (1x1 for expand and project).
 * @param input   int8 [n][h][w][c] (expand.input)
 * @param e_filter, e_bias, d_filter, d_bias, p_filter, p_bias  the members' filters and int32
 *                biases (a bias may be NULL)
 * @param output  int8 [n][ho][wo][co] (project.output); the same pointer as input, or apart
 * @param scratch int8 [te_fused_block_get_buffer_size(p)], from the caller
 * @return TE_OK, the first failing member kernel's status, TE_ERR_SCRATCH without scratch, or
 *         TE_ERR_ARG for null pointers, a geometry outside the domain, or an output that
 *         overlaps the input otherwise than as allowed above.
 */
te_status_t te_fused_block_s8(const te_fused_block_params_t *p, const int8_t *input,
                              const int8_t *e_filter, const int32_t *e_bias,
                              const int8_t *d_filter, const int32_t *d_bias,
                              const int8_t *p_filter, const int32_t *p_bias, int8_t *output,
                              int8_t *scratch);

#endif /* TE_FUSED_BLOCK_H */
