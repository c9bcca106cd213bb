#include "te_depthwise_rows.h"

#include "te_rows_inplace.h"

TE_ROWS_FRONT_END(te_depthwise_conv, te_depthwise_conv_params_t, te_depthwise_conv_wrapper_s8)
