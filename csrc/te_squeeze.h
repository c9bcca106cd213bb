/**
 * @file te_squeeze.h
 * @brief TFLite SQUEEZE and EXPAND_DIMS (int8, int16): unit axes removed or inserted; the
 * bytes do not change, only the shape the graph gives them.
 */
#ifndef TE_SQUEEZE_H
#define TE_SQUEEZE_H

#include "te_common.h"

typedef struct {
    int32_t size; /**< bytes to copy (the byte size of either tensor), >= 1 */
} te_squeeze_params_t;

/**
 * Copy p->size bytes from input to output. Overlap is allowed (memmove), and when the planner
 * gives both tensors the same address (the usual case: these ops are views) nothing is done.
 * @return TE_OK, or TE_ERR_ARG for null pointers or a size below 1.
 */
te_status_t te_squeeze_s8(const te_squeeze_params_t *p, const int8_t *input, int8_t *output);

/**
 * The same copy for int16 tensors: p->size bytes, two per element (an odd size is refused).
 * @return TE_OK, or TE_ERR_ARG for null pointers or a size below 2 or odd.
 */
te_status_t te_squeeze_s16(const te_squeeze_params_t *p, const int16_t *input, int16_t *output);

#endif /* TE_SQUEEZE_H */
