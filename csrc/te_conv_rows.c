#include "te_conv_rows.h"

#include "te_rows_inplace.h"

TE_ROWS_FRONT_END(te_conv2d, te_conv2d_params_t, te_conv2d_wrapper_s8)
