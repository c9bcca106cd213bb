/**
 * @file te_reshape.h
 * @brief TFLite RESHAPE (int8, int16): the bytes do not change, only the shape the graph gives
 * them.
 */
#ifndef TE_RESHAPE_H
#define TE_RESHAPE_H

#include "te_common.h"

typedef struct {
    int32_t size; /**< bytes to copy (the byte size of either tensor), >= 1 */
} te_reshape_params_t;

/**
 * Copy p->size bytes from input to output. Overlap is allowed (memmove), and when the planner
 * gives both tensors the same address the call does nothing.
 * @return TE_OK, or TE_ERR_ARG for null pointers or a size below 1.
 */
te_status_t te_reshape_s8(const te_reshape_params_t *p, const int8_t *input, int8_t *output);

/**
 * The same copy for int16 tensors: p->size bytes, two per element (an odd size is refused).
 * @return TE_OK, or TE_ERR_ARG for null pointers or a size below 2 or odd.
 */
te_status_t te_reshape_s16(const te_reshape_params_t *p, const int16_t *input, int16_t *output);

#endif /* TE_RESHAPE_H */
