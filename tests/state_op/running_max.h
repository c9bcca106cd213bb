/* Test-only stateful kernel (tests/state_op/running_max.py): state = max(state, x); y = state. */
#ifndef TEST_RUNNING_MAX_H
#define TEST_RUNNING_MAX_H

#include "te_common.h"

typedef struct {
    int32_t size;
} test_running_max_params_t;

te_status_t test_running_max_s8(const test_running_max_params_t *p, const int8_t *x,
                                int8_t *state, int8_t *y);

#endif
