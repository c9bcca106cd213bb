/**
 * @file te_conv_rows.h
 * @brief CONV_2D in place band by band (te_rows_inplace.h): the output overwrites the input,
 *        which starts a little after it, a band of output rows at a time through
 *        te_conv2d_wrapper_s8, straight into place. For the convolutions the pointwise
 *        in-place kernel does not take: a model's strided first convolution above all.
 */
#ifndef TE_CONV_ROWS_H
#define TE_CONV_ROWS_H

#include "te_conv.h"

/** Output rows per kernel call when the input starts `input_offset` bytes after the output
 * (te_rows_inplace_band); 0 outside the domain. The twin of ops/rows_inplace.py's band. */
int32_t te_conv2d_rows_inplace_band(const te_conv2d_params_t *p, int32_t input_offset);

/**
 * CONV_2D whose output may overwrite its input: as te_conv2d_wrapper_s8 out of place, a band
 * of rows at a time. Domain: what that kernel takes, every output row's window reading at least
 * one input row; output and input apart, or the input starting at or after the output with
 * te_conv2d_rows_inplace_band(p, input - output) >= 1. No scratch.
 * @return TE_OK, or TE_ERR_ARG outside the domain.
 */
te_status_t te_conv2d_rows_inplace_s8(const te_conv2d_params_t *p, const int8_t *input,
                                      const int8_t *filter, const int32_t *bias, int8_t *output);

#endif /* TE_CONV_ROWS_H */
