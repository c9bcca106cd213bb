/**
 * @file user_square.h
 * @brief USER_SQUARE, a user-defined int8 op: y = table[x + 128] (see square_op.py).
 */
#ifndef USER_SQUARE_H
#define USER_SQUARE_H

#include "te_common.h"

typedef struct {
    int32_t size;         /**< elements, >= 1 */
    const int8_t *table;  /**< 256 outputs, indexed by input + 128 */
} user_square_params_t;

/**
 * @param input  int8 [size]
 * @param output int8 [size]; may alias input
 * @return TE_OK, or TE_ERR_ARG for null pointers or size < 1
 */
te_status_t user_square_s8(const user_square_params_t *p, const int8_t *input, int8_t *output);

#endif /* USER_SQUARE_H */
