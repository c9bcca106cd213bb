/**
 * @file te_depthwise_rows.h
 * @brief DEPTHWISE_CONV_2D in place band by band (te_rows_inplace.h): the output overwrites
 *        the input, which starts a little after it, a band of output rows at a time through
 *        te_depthwise_conv_wrapper_s8, straight into place. For the layers
 *        te_depthwise_conv_inplace_s8 does not take: a stride of 2 shrinks the plane, and a
 *        band lands over input rows that later bands no longer read.
 */
#ifndef TE_DEPTHWISE_ROWS_H
#define TE_DEPTHWISE_ROWS_H

#include "te_depthwise.h"

/** Output rows per kernel call when the input starts `input_offset` bytes after the output
 * (te_rows_inplace_band); 0 outside the domain. The twin of ops/rows_inplace.py's band. */
int32_t te_depthwise_conv_rows_inplace_band(const te_depthwise_conv_params_t *p,
                                             int32_t input_offset);

/**
 * DEPTHWISE_CONV_2D whose output may overwrite its input: as te_depthwise_conv_wrapper_s8 out
 * of place, a band of rows at a time. Domain: what that kernel takes, every output row's window
 * reading at least one input row; output and input apart, or the input starting at or after
 * the output with te_depthwise_conv_rows_inplace_band(p, input - output) >= 1. No scratch.
 * @return TE_OK, or TE_ERR_ARG outside the domain.
 */
te_status_t te_depthwise_conv_rows_inplace_s8(const te_depthwise_conv_params_t *p,
                                              const int8_t *input, const int8_t *filter,
                                              const int32_t *bias, int8_t *output);

#endif /* TE_DEPTHWISE_ROWS_H */
