/**
 * @file te_svdf.h
 * @brief int8 SVDF (TFLite SVDF) with int16 or int8 state kept across invocations.
 *
 * Bit-exact with TFLM's EvalIntegerSvdfReference (svdf_common.cc); tinyengine/ops/svdf.py is the
 * specification and computes the parameters. Per invocation and batch row: the state moves left
 * by one time step; each filter's feature value (weights_feature . (input - zp_in), requantised by
 * the feature multiplier, clamped to the state type, plus the state's zero point) becomes its
 * newest step; each unit's output is bias + the time-weighted sums of its rank filters,
 * requantised by the output multiplier and clamped to int8. The fused activation is not applied
 * (TFLM's integer SVDF does not). Sums wrap in 32 bits as TFLM's do; no scratch is needed.
 */
#ifndef TE_SVDF_H
#define TE_SVDF_H

#include "te_common.h"

typedef struct {
    int32_t batches;            /**< rows of input, output and state, >= 1 */
    int32_t input_size;         /**< features per input row, >= 1 */
    int32_t filters;            /**< units * rank, >= 1 */
    int32_t rank;               /**< filters per unit, >= 1, divides filters */
    int32_t memory;             /**< time steps each filter remembers, >= 1 */
    int32_t input_offset;       /**< minus the input zero point, in [-127, 128] */
    int32_t state_zero_point;   /**< within the state type's range */
    int32_t output_offset;      /**< the output zero point, in [-128, 127] */
    int32_t feature_multiplier; /**< Q31 multiplier of s_in * s_wf / s_state, >= 0 */
    int32_t feature_shift;      /**< its shift, in [-31, 31] */
    int32_t output_multiplier;  /**< Q31 multiplier of s_state * s_wt / s_out, >= 0 */
    int32_t output_shift;       /**< its shift, in [-31, 31] */
} te_svdf_params_t;

/**
 * SVDF with int16 time weights and int16 state (TFLM's EvalInt16SvdfReference).
 * @param input           int8 [batches][input_size]
 * @param weights_feature int8 [filters][input_size]
 * @param weights_time    int16 [filters][memory]
 * @param bias            int32 [filters / rank]
 * @param state           int16 [batches][filters][memory], oldest step first; read and updated
 *                        in place (persistent: keep it between calls, reset it to 0)
 * @param output          int8 [batches][filters / rank]; must not overlap the others
 * @return TE_OK, or TE_ERR_ARG for null pointers or parameters outside their ranges.
 */
te_status_t te_svdf_s8(const te_svdf_params_t *p, const int8_t *input,
                       const int8_t *weights_feature, const int16_t *weights_time,
                       const int32_t *bias, int16_t *state, int8_t *output);

/**
 * SVDF with int8 time weights and int8 state (TFLM's EvalInt8SvdfReference); arguments as
 * te_svdf_s8 with int8 weights_time and state (reset to the state's zero point).
 */
te_status_t te_svdf_s8_state_s8(const te_svdf_params_t *p, const int8_t *input,
                                const int8_t *weights_feature, const int8_t *weights_time,
                                const int32_t *bias, int8_t *state, int8_t *output);

#endif /* TE_SVDF_H */
