/**
 * @file te_variables.h
 * @brief TFLite resource variables: READ_VARIABLE and ASSIGN_VARIABLE (int8, int16). The
 * variable lives in the model's state region; both ops are byte copies, as TFLM's memcpy.
 */
#ifndef TE_VARIABLES_H
#define TE_VARIABLES_H

#include "te_common.h"

typedef struct {
    int32_t size; /**< bytes of the variable (and of the value), >= 1 */
} te_variable_params_t;

/**
 * READ_VARIABLE: copy p->size bytes of the variable into output.
 * @return TE_OK, or TE_ERR_ARG for null pointers or a size below 1.
 */
te_status_t te_read_variable_s8(const te_variable_params_t *p, const int8_t *state,
                                int8_t *output);

/**
 * READ_VARIABLE on an int16 variable: p->size bytes, two per element (an odd size is refused).
 * @return TE_OK, or TE_ERR_ARG for null pointers or a size below 2 or odd.
 */
te_status_t te_read_variable_s16(const te_variable_params_t *p, const int16_t *state,
                                 int16_t *output);

/**
 * ASSIGN_VARIABLE: copy p->size bytes of value into the variable, and into output, the IR's
 * view of the value, unless the planner laid output over value (then nothing more to do).
 * @return TE_OK, or TE_ERR_ARG for null pointers or a size below 1.
 */
te_status_t te_assign_variable_s8(const te_variable_params_t *p, const int8_t *value,
                                  int8_t *state, int8_t *output);

/**
 * ASSIGN_VARIABLE on an int16 variable: p->size bytes, two per element (an odd size is
 * refused).
 * @return TE_OK, or TE_ERR_ARG for null pointers or a size below 2 or odd.
 */
te_status_t te_assign_variable_s16(const te_variable_params_t *p, const int16_t *value,
                                   int16_t *state, int16_t *output);

#endif /* TE_VARIABLES_H */
