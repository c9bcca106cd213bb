/**
 * @file te_logistic_tanh.h
 * @brief int8 LOGISTIC and TANH (TFLite LOGISTIC, TANH) by table lookup.
 *
 * For int8 input TFLite's fixed-point sigmoid and tanh depend on the input byte alone, so the
 * code generator evaluates them once for all 256 inputs (tinyengine/ops/logistic_tanh.py, the
 * specification) and the kernels look each element up: y = table[x + 128]. LOGISTIC's output
 * has scale 1/256 and zero point -128, TANH's 1/128 and 0.
 */
#ifndef TE_LOGISTIC_TANH_H
#define TE_LOGISTIC_TANH_H

#include "te_common.h"

typedef struct {
    int32_t size; /**< elements, >= 1 */
} te_lut_params_t;

/**
 * @param input  int8 [size]
 * @param table  int8 [256]: the output for input -128 .. 127
 * @param output int8 [size]; may be the input buffer (each element is read before it is written)
 * @return TE_OK, or TE_ERR_ARG for null pointers or a size below 1.
 */
te_status_t te_logistic_s8(const te_lut_params_t *p, const int8_t *input, const int8_t *table,
                           int8_t *output);

/** TANH: as te_logistic_s8, with TANH's table. */
te_status_t te_tanh_s8(const te_lut_params_t *p, const int8_t *input, const int8_t *table,
                       int8_t *output);

#endif /* TE_LOGISTIC_TANH_H */
