#include "te_batch_matmul.h"

static int te_batch_matmul_params_ok(const te_batch_matmul_params_t *p)
{
    int32_t d;
    for (d = 0; d < TE_BATCH_MATMUL_BATCH_DIMS; ++d) {
        if (p->batch[d] < 1 || p->lhs_stride[d] < 0 || p->rhs_stride[d] < 0) {
            return 0;
        }
    }
    return p->rows >= 1 && p->cols >= 1 && p->depth >= 1 && (p->adj_x == 0 || p->adj_x == 1) &&
           (p->adj_y == 0 || p->adj_y == 1) && p->q.input_offset >= -127 &&
           p->q.input_offset <= 128 && p->rhs_offset >= -127 && p->rhs_offset <= 128 &&
           p->multiplier >= 0 && p->shift >= -31 && p->shift <= 30 && p->q.act_min >= -128 &&
           p->q.act_max <= 127 && p->q.act_min <= p->q.act_max;
}

/*
 * One int8 matrix product. The element steps follow the storage order of each operand; sums go
 * through uint32 so that they wrap modulo 2^32 (TFLite's int32 arithmetic) without signed
 * overflow.
 */
static void te_matmul_s8(const te_batch_matmul_params_t *p, const int8_t *lhs, const int8_t *rhs,
                         int8_t *out)
{
    const int32_t lhs_row = p->adj_x ? 1 : p->depth, lhs_k = p->adj_x ? p->rows : 1;
    const int32_t rhs_k = p->adj_y ? 1 : p->cols, rhs_col = p->adj_y ? p->depth : 1;
    int32_t i, j, k;
    for (i = 0; i < p->rows; ++i) {
        for (j = 0; j < p->cols; ++j) {
            const int8_t *a = lhs + i * lhs_row;
            const int8_t *b = rhs + j * rhs_col;
            uint32_t sum = 0;
            int32_t acc;
            for (k = 0; k < p->depth; ++k) {
                sum += (uint32_t)(((int32_t)a[k * lhs_k] + p->q.input_offset) *
                                  ((int32_t)b[k * rhs_k] + p->rhs_offset));
            }
            acc = te_multiply_by_quantized_multiplier((int32_t)sum, p->multiplier, p->shift);
            acc += p->q.output_offset;
            out[i * p->cols + j] = (int8_t)te_clamp(acc, p->q.act_min, p->q.act_max);
        }
    }
}

te_status_t te_batch_matmul_s8(const te_batch_matmul_params_t *p, const int8_t *lhs,
                               const int8_t *rhs, int8_t *output)
{
    int32_t b0, b1, b2;
    int8_t *out;
    if (p == NULL || lhs == NULL || rhs == NULL || output == NULL ||
        !te_batch_matmul_params_ok(p)) {
        return TE_ERR_ARG;
    }
    out = output;
    for (b0 = 0; b0 < p->batch[0]; ++b0) {
        for (b1 = 0; b1 < p->batch[1]; ++b1) {
            for (b2 = 0; b2 < p->batch[2]; ++b2) {
                const int8_t *l = lhs + b0 * p->lhs_stride[0] + b1 * p->lhs_stride[1] +
                                  b2 * p->lhs_stride[2];
                const int8_t *r = rhs + b0 * p->rhs_stride[0] + b1 * p->rhs_stride[1] +
                                  b2 * p->rhs_stride[2];
                te_matmul_s8(p, l, r, out);
                out += p->rows * p->cols;
            }
        }
    }
    return TE_OK;
}
