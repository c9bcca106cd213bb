/**
 * @file te_reduce.h
 * @brief int8 and int16 MEAN and SUM over any set of axes (TFLite's reduce).
 *
 * Both ops follow TFLM's reduce.cc int8 / int16 path, reference_ops::QuantizedMeanOrSum: per
 * output element, the int32 sum of its n input values (wrapping, as TFLM's
 * AddTensorValuesWithExpectedOverflow), minus input_zp * n, rescaled by one Q31 multiplier and
 * shift, plus the output zero point, clamped to the type's range (int8, or int16 for the `_s16`
 * entry points of TFLite's 16x8 mode). MEAN folds 1/n into the multiplier
 * (computed in Python, tinyengine/ops/reduce.py); SUM does not. The kernels themselves only add
 * and requantise, so one kernel serves both ops.
 *
 * The shape is given collapsed: adjacent axes that are both reduced or both kept may be merged
 * and axes of size 1 dropped (neither changes which input elements meet in which output
 * element), so any reduction of a tensor of rank <= TE_REDUCE_MAX_DIMS fits the parameters.
 * Output elements are laid out row-major over the kept axes, in order: the same bytes whether
 * or not the reduced axes are kept as dims of size 1.
 *
 * Variants: te_mean_s8 / _s16 (te_pool.h) handle a reduction whose reduced axes form one
 * contiguous run [outer][reduced][inner], with contiguous channel-blocked accumulation;
 * te_reduce_s8 / _s16 handle any set of axes. te_reduce_wrapper_s8 / _s16 pick te_mean when it
 * applies, by the same rule as the Python `kernel` hook.
 */
#ifndef TE_REDUCE_H
#define TE_REDUCE_H

#include "te_common.h"

/** Most (collapsed) dimensions a reduction may have. */
#define TE_REDUCE_MAX_DIMS 8

typedef struct {
    int32_t rank;                         /**< collapsed rank, 1..TE_REDUCE_MAX_DIMS */
    int32_t dims[TE_REDUCE_MAX_DIMS];     /**< input sizes, row-major, each >= 1 (first rank) */
    int32_t reduced[TE_REDUCE_MAX_DIMS];  /**< 1: axis is reduced, 0: kept (first rank) */
    te_quant_t q;       /**< input_offset = -input zp, output_offset = output zp; act limits
                             within the type's range */
    int32_t multiplier; /**< Q31 multiplier (MEAN: in_scale / out_scale / n folded), >= 0 */
    int32_t shift;      /**< its shift, > 0 is a left shift; -31 <= shift <= 30 */
} te_reduce_params_t;

/**
 * Sum of each output element's inputs, requantised: any set of reduced axes. Needs no scratch:
 * each output element is summed on its own (strided reads when the innermost axis is kept).
 * @param input  int8, row-major over p->dims (prod(dims) elements).
 * @param output int8, prod of the kept dims elements, row-major over the kept axes; must not
 *               overlap input.
 * @return TE_OK, or TE_ERR_ARG for null pointers, a rank outside 1..TE_REDUCE_MAX_DIMS, a size
 *         < 1, more than INT32_MAX input elements, a flag other than 0/1, or a multiplier, shift
 *         or limit outside the ranges above.
 */
te_status_t te_reduce_s8(const te_reduce_params_t *p, const int8_t *input, int8_t *output);

/**
 * The int16 reduction: as te_reduce_s8 on int16 values, limits within [-32768, 32767].
 * @param input  int16, row-major over p->dims.
 * @param output int16, row-major over the kept axes; must not overlap input.
 * @return as te_reduce_s8.
 */
te_status_t te_reduce_s16(const te_reduce_params_t *p, const int16_t *input, int16_t *output);

/**
 * te_mean_s8 when the reduced axes of size > 1 are contiguous (no kept axis of size > 1 between
 * two of them), else te_reduce_s8. Same arguments and results as te_reduce_s8.
 */
te_status_t te_reduce_wrapper_s8(const te_reduce_params_t *p, const int8_t *input,
                                 int8_t *output);

/** The int16 twin: te_mean_s16 or te_reduce_s16 by the same rule. */
te_status_t te_reduce_wrapper_s16(const te_reduce_params_t *p, const int16_t *input,
                                  int16_t *output);

#endif /* TE_REDUCE_H */
